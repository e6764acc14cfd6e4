"""`manage.py check --deploy` under production settings (README: SECRET_KEY, DEBUG=0, ALLOWED_HOSTS)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check_deploy(tmp_path, **env) -> subprocess.CompletedProcess:
    """The check in a fresh interpreter: settings read the environment once, at import."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REPLAYWEB_", "DJANGO_"))}
    clean.pop("DEBUG", None)
    clean.pop("SECRET_KEY", None)
    clean.pop("ALLOWED_HOSTS", None)
    clean.update(REPLAYWEB_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(**extra) -> dict:
    return {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "replay.example.com",
        **extra,
    }


def test_production_settings_pass_the_deploy_check_with_no_issue(tmp_path):
    result = check_deploy(tmp_path, **production())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_behind_a_tls_proxy_passes_too(tmp_path):
    result = check_deploy(tmp_path, **production(REPLAYWEB_BEHIND_PROXY="1"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_does_flag_the_localhost_defaults(tmp_path):
    """The check is not vacuous: the development defaults are what it exists to catch."""
    result = check_deploy(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for code in ("security.W009", "security.W018"):  # the fallback SECRET_KEY; DEBUG on
        assert code in output


def test_turning_off_secure_cookies_in_production_is_flagged(tmp_path):
    result = check_deploy(tmp_path, **production(REPLAYWEB_SECURE_COOKIES="0"))
    assert result.returncode != 0
    assert "security.W012" in result.stdout + result.stderr  # SESSION_COOKIE_SECURE
