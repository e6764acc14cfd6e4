"""Production settings (issue 14.5): what DEBUG=0 needs and does, checked in fresh interpreters, and a
gunicorn started as the README says serving a run page whose htmx and plotly work in Chromium."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("REPLAYWEB_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT = Path(os.environ.get("REPLAYWEB_PRODUCTION_SCREENSHOT", "/tmp/replayweb-production-run-page.png"))


def clean_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLAYWEB_", "DJANGO_", "GUNICORN_"))}
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"):
        env.pop(name, None)
    env.update(REPLAYWEB_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="replayweb.settings", **extra)
    return env


def production(tmp_path, **extra) -> dict:
    return clean_env(
        tmp_path,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        **extra,
    )


def python(env, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def manage(env, *args) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    env = clean_env(tmp_path, DEBUG="0", ALLOWED_HOSTS="replay.example.com")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "ImproperlyConfigured" in result.stderr


def test_development_still_starts_without_a_secret_key(tmp_path):
    result = python(clean_env(tmp_path), "import django; django.setup(); from django.conf import settings; "
                                         "print(settings.SECRET_KEY.startswith('django-insecure'))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


SETTINGS_FACTS = """
import django, json
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
static = client.get("/static/vendor/htmx-2.0.4.min.js", secure=True)
plotly = client.get("/static/vendor/plotly-2.35.3.min.js", secure=True)
print(json.dumps({
    "health_checks": settings.DATABASES["default"]["CONN_HEALTH_CHECKS"],
    "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
    "htmx": [static.status_code, static.get("Content-Type", "")],
    "plotly": [plotly.status_code, plotly.get("Content-Type", "")],
    "session_engine": settings.SESSION_ENGINE,
}))
"""


def test_production_serves_static_files_itself_and_checks_kept_connections(tmp_path):
    result = python(production(tmp_path), SETTINGS_FACTS)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["health_checks"] is True
    assert facts["htmx"][0] == 200 and "javascript" in facts["htmx"][1]
    assert facts["plotly"][0] == 200 and "javascript" in facts["plotly"][1]
    assert facts["session_engine"] == "replayweb.sessions"


def gunicorn_config() -> dict:
    code = ("import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
            "print(json.dumps({k: c[k] for k in ('timeout', 'workers', 'threads', 'wsgi_app', 'worker_class')}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith("REPLAYWEB_")})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_gunicorn_config_gives_long_work_time_and_names_the_app():
    config = gunicorn_config()
    assert config["timeout"] >= 600  # a 1M-decision HTML export streams for minutes; 30 s cut it
    assert config["wsgi_app"] == "replayweb.wsgi:application"
    assert config["workers"] >= 2 and config["threads"] >= 2
    readme = (ROOT / "README.md").read_text()
    assert "gunicorn -c gunicorn.conf.py" in readme


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CREATE_USER = """
from django.contrib.auth.models import User
User.objects.create_user("prod", password="prod-pass-123")
"""


@pytest.mark.slow
def test_gunicorn_started_as_the_readme_says_serves_a_run_page_with_working_htmx_and_plotly(tmp_path, samples_dir):
    if not CHROMIUM.exists():
        if os.environ.get("REPLAYWEB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    port = free_port()
    # Plain HTTP on localhost: TLS is the proxy's (README); everything else as in production.
    env = production(tmp_path, REPLAYWEB_BIND=f"127.0.0.1:{port}", REPLAYWEB_WORKERS="2",
                     REPLAYWEB_SSL_REDIRECT="0", REPLAYWEB_SECURE_COOKIES="0", REPLAYWEB_HSTS_SECONDS="0")
    (tmp_path / "var").mkdir()
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "shell", "-c", CREATE_USER)
    manage(env, "import_logs", "--now", str(samples_dir / "dynoai/real_sample/session_replay.json"), "--user", "prod")
    log = open(tmp_path / "gunicorn.log", "w+")
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            failed = []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("pageerror", lambda e: failed.append(f"page error: {e}"))
            page.goto(base + "/login/")
            page.fill("input[name=username]", "prod")
            page.fill("input[name=password]", "prod-pass-123")
            with page.expect_navigation():
                page.click("form button[type=submit]")
            page.click("a[href^='/runs/']")
            page.wait_for_url("**/runs/*/")
            page.wait_for_function("() => window.htmx && window.Plotly")
            # The summary, facets and chart arrive by htmx (hx-trigger=load); plotly draws the chart.
            page.wait_for_selector("#chart:not(.loading) .js-plotly-plot .main-svg", timeout=20000)
            page.wait_for_selector("#facets:not(.loading)", timeout=20000)
            # A decision opens in the side panel through htmx, not a page load.
            with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
                page.locator("a.open").first.click()
            page.wait_for_function("() => document.querySelector('#panel') && document.querySelector('#panel').innerText.trim().length > 0")
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert not failed, failed
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        text = log.read()
        log.close()
    assert "Traceback" not in text, text[-3000:]
