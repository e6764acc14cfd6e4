"""Schemathesis over /api: cases generated from our OpenAPI schema, sent to the WSGI app in process.

Every operation gets valid and invalid inputs (odd strings in every filter, huge ids, bad files);
whatever the input, the API must not answer with a server error.
"""
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from replayweb.wsgi import application
from viewer.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(user):
    return ApiToken.issue(user, name="schemathesis")[1]


@pytest.fixture
def api_data(import_sample, token):
    """Something to find: a DynoAI run, a session and a run holding NaN, all of `user`; and its token."""
    import_sample("dynoai/real_sample/session_replay.json")
    import_sample("session/combat_session_sample.jsonl")
    import_sample("odd/nan_values_session_replay.json")
    # Called straight through WSGI, Django would close the test's database connection after each
    # request; Django's own test client stops that the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {token}"}
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# Loaded at collection: the schema endpoint needs no database. (schemathesis.pytest.from_fixture would
# defer it, but that path breaks on pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_with_a_server_error(case, api_data):
    case.call_and_validate(headers=api_data, checks=[not_a_server_error])
