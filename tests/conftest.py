import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get("REPLAYWEB_SAMPLES", ROOT.parent / "shared" / "samples"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"the shared samples are not at {SAMPLES} (set REPLAYWEB_SAMPLES)")
    return SAMPLES


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("mallory", password="mallory-pass-123")


@pytest.fixture
def client_in(client, user):
    """A browser session logged in as `user`."""
    client.force_login(user)
    return client


@pytest.fixture
def import_sample(samples_dir, user):
    """import_sample("session/combat_session_sample.jsonl") -> Run, owned by `user` unless given.

    Extra paths (a manifest.json) are imported in the same group, as one upload.
    """
    from viewer.ingest import Source, run_ingest

    def _import(*relpaths, owner=None, keep_user_ids=False):
        sources = [Source(name=Path(p).name, path=samples_dir / p, group="test") for p in relpaths]
        results = run_ingest(owner=owner or user, sources=sources, keep_user_ids=keep_user_ids)
        runs = [r for r in results if r.status in ("imported", "duplicate")]
        assert runs, [r.message for r in results]
        return runs[0].run

    return _import
