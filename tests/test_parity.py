"""One querystring, one set of decisions: the run page's htmx table, the CSV and JSON exports and the API.

Each face is walked to its end through its own paging (the table's "load more" link, the API's
`next` cursor); the exports stream everything at once. A `limit` bounds one answer: the table's
first page, one API page, the whole export.
"""
import csv
import io
import json
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
from django.test import Client

from viewer.models import ApiToken, Decision

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"
SESSION = "session/session_debt_auction_ambush.jsonl"

DYNOAI_QUERIES = [
    "",
    "action=afr&cylinder=r",
    "action=grad&action=clamp&after=100&limit=7",
    "q=cylinder&rpm_min=2500&kpa_max=80",
    "v=afr_error_pct<0&rpm=2000",
    "rpm_index=1",
    "since=2025-12-15T17:28:01.810Z&until=2025-12-15T17:28:01.820Z",
    "t_from=5&t_to=14&limit=30",
    "v=passes=2",
]
SESSION_QUERIES = [
    "",
    "round_min=2&round_max=3&agent=player_01",
    "action=llm_call&q=TARGET",
    "action=action_&after=40&limit=250",
    "v=roll.margin<0",
    "round=4&v=tokens.output>=300",
    "model=claude-sonnet-4-5&temperature_min=0.8",
    "agent_type=dm&temperature=0.7&round_max=2",
    "temperature_max=0.7&action=llm",
]


class _Rows(HTMLParser):
    """data-seq of the table rows, and the table's "load more" link."""

    def __init__(self):
        super().__init__()
        self.seqs, self.more, self._in_more = [], None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-seq" in attrs:
            self.seqs.append(int(attrs["data-seq"]))
        if tag == "tr" and attrs.get("id") == "load-more":
            self._in_more = True
        if tag == "a" and self._in_more and self.more is None:
            self.more = attrs["href"]


def fragment_seqs(client, run, query):
    path = f"/runs/{run.pk}/"
    url, target, seqs = f"{path}?{query}", "run-view", []
    while url:
        response = client.get(url, headers={"HX-Request": "true", "HX-Target": target})
        assert response.status_code == 200, response.content[:300]
        page = response.content.decode()
        assert "<html" not in page  # a fragment, not the page
        rows = _Rows()
        rows.feed(page)
        seqs += rows.seqs
        if "limit=" in query:  # `limit` bounds one answer: the table's first page, like one API page
            break
        url, target = (urljoin(path, rows.more) if rows.more else None), "load-more"
    return seqs


def csv_seqs(client, run, query):
    response = client.get(f"/runs/{run.pk}/export.csv?{query}")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return [int(row["seq"]) for row in csv.DictReader(io.StringIO(text, newline=""))]


def json_decisions(client, run, query):
    response = client.get(f"/runs/{run.pk}/export.json?{query}")
    assert response.status_code == 200
    return json.loads(b"".join(response.streaming_content))["decisions"]


def api_seqs(token, run, query):
    api = Client(headers={"Authorization": f"Bearer {token}"})
    url, seqs = f"/api/runs/{run.pk}/decisions?{query}", []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content[:300]
        data = response.json()
        seqs += [d["seq"] for d in data["items"]]
        # keep every parameter but after; `limit` bounds one answer, as it bounds an export
        if data["next"] is None or "limit=" in query:
            break
        rest = "&".join(p for p in query.split("&") if p and not p.startswith("after="))
        url = f"/api/runs/{run.pk}/decisions?{rest}&after={data['next']}"
    return seqs


@pytest.fixture
def token(user):
    return ApiToken.issue(user, name="parity")[1]


def check_parity(client, token, run, query):
    seqs = fragment_seqs(client, run, query)
    assert csv_seqs(client, run, query) == seqs
    assert api_seqs(token, run, query) == seqs
    exported = json_decisions(client, run, query)
    expected = Decision.objects.filter(run=run, seq__in=seqs).order_by("seq").values_list("action", "reason")
    assert [(d["action"], d.get("reason", "")) for d in exported] == list(expected)
    return seqs, exported


@pytest.mark.parametrize("query", DYNOAI_QUERIES)
def test_a_dynoai_querystring_gives_the_same_decisions_everywhere(
    client_in, token, import_sample, samples_dir, query
):
    run = import_sample(REAL)
    seqs, exported = check_parity(client_in, token, run, query)
    source = json.loads((samples_dir / REAL).read_text())["decisions"]
    assert exported == [source[i] for i in seqs]  # the JSON export holds those very decisions


@pytest.mark.parametrize("query", SESSION_QUERIES)
def test_a_session_querystring_gives_the_same_decisions_everywhere(client_in, token, import_sample, query):
    run = import_sample(SESSION)
    seqs, _ = check_parity(client_in, token, run, query)
    if not query:
        assert seqs == list(range(run.decision_count))


def test_the_parity_queries_are_not_trivial(client_in, token, import_sample):
    """Each query narrows the run to something between nothing and everything (else it tests little)."""
    runs = {REAL: import_sample(REAL), SESSION: import_sample(SESSION)}
    for sample, queries in ((REAL, DYNOAI_QUERIES), (SESSION, SESSION_QUERIES)):
        for query in queries[1:]:
            seqs = csv_seqs(client_in, runs[sample], query)
            assert 0 < len(seqs) < runs[sample].decision_count, (sample, query)


V12 = "session_v12_mixed_zones.jsonl"  # tests/data: a v1.2 file, its events chained and correlated


@pytest.mark.parametrize("query", ["correlation_id=round_2_a1b2c3d4", "agent_type=player&correlation_id=round_1_0f0e0d0c"])
def test_a_v12_correlation_querystring_gives_the_same_decisions_everywhere(client_in, token, user, query):
    from pathlib import Path

    from viewer.ingest import Source, run_ingest

    path = Path(__file__).parent / "data" / V12
    run = run_ingest(owner=user, sources=[Source(name=V12, path=path, group="test")])[0].run
    seqs, _ = check_parity(client_in, token, run, query)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    wanted = dict(p.split("=") for p in query.split("&"))
    assert seqs == [i for i, e in enumerate(lines) if all(e.get(k) == v for k, v in wanted.items())]
    assert seqs


@pytest.mark.parametrize("query, bad", [("temperature=hot", "temperature"),
                                        ("temperature_min=1&temperature_max=0", "temperature_max")])
def test_a_bad_llm_filter_is_a_400_naming_it_on_every_face(client_in, token, import_sample, query, bad):
    run = import_sample(SESSION)
    answers = [
        client_in.get(f"/runs/{run.pk}/?{query}", headers={"HX-Request": "true", "HX-Target": "load-more"}),
        client_in.get(f"/runs/{run.pk}/export.csv?{query}"),
        Client(headers={"Authorization": f"Bearer {token}"}).get(f"/api/runs/{run.pk}/decisions?{query}"),
    ]
    for response in answers:
        assert response.status_code == 400
        assert f"{bad}: " in response.content.decode()
    assert client_in.get(f"/runs/{run.pk}/?{query}").status_code == 400  # the page: an error on its form


@pytest.mark.parametrize("query, expected", [
    ("label=suspect", [5, 100]), ("label=ok&label=regression", [7]), ("noted=1", [5, 7, 100]),
    ("noted=1&action=afr", [5, 7]), ("label=nobody", []),
])
def test_notes_filters_give_the_same_decisions_through_every_face(client_in, token, import_sample, user, query, expected):
    from viewer import notes

    run = import_sample(REAL)
    seq = run.decisions.order_by("seq").values_list("seq", flat=True)
    notes.add(run, user, seq=seq[5], labels=["suspect"])
    notes.add(run, user, seq=seq[7], text="fine", labels=["ok"])
    notes.add(run, user, seq=seq[100], text="look", labels=["suspect", "later"])
    notes.add(run, user, text="the run", labels=["regression"])  # not a decision's: narrows nothing
    seqs, _ = check_parity(client_in, token, run, query)
    assert seqs == [seq[i] for i in expected]
