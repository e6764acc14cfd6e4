"""The trace kind's faces (issue 22): viewer/kinds/otel.py's tree, tokens, cells, replay and diff, and
its name in the runs list and the API."""
from pathlib import Path

import pytest

from viewer import cells, kinds, tokens, trace
from viewer.ingest import Source, run_ingest
from viewer.kinds.otel import CELLS, LLM, REPLAY, TRACE
from viewer.replay import reducer_for

OTLP = Path(__file__).parent / "data" / "otlp"


@pytest.fixture
def import_otlp(user):
    def _import(name: str):
        (result,) = run_ingest(owner=user, sources=[Source(name=name, path=OTLP / name, group="test")])
        assert result.status == "imported", result.message
        return result.run

    return _import


@pytest.mark.django_db
def test_the_tree_is_the_spans_under_their_parents_with_the_chat_spans_as_calls(import_otlp):
    built = trace.build(run=import_otlp("agent_trace.jsonl"), spec=TRACE)
    (root,) = built.rounds
    assert (root.label, root.role) == ("invoke_agent planner", "span")
    assert [(n.role, n.action) for n in root.children] == [("call", "chat"), ("span", "execute_tool"), ("call", "chat")]
    first, tool, second = root.children
    assert (first.model, first.input, first.output) == ("gpt-4o-mini", 97, 52)
    assert first.wait_ms == 1600.0 and second.wait_ms == 2120.0  # the spans' own durations
    assert root.tokens == 97 + 52 + 164 + 38
    assert ("Parent span", "eee19b7ec3c1b174") in tool.facts and ("Duration", "400.0 ms") in tool.facts


@pytest.mark.django_db
def test_several_traces_make_one_tree_per_root(import_otlp):
    built = trace.build(run=import_otlp("two_traces.jsonl"), spec=TRACE)
    assert [(r.label, r.round, [c.action for c in r.children]) for r in built.rounds] == [
        ("GET /quote", 1, ["chat"]), ("GET /quote", 2, ["chat"])]


def test_a_span_whose_parent_starts_after_it_still_goes_under_it_and_a_loop_does_not_hang():
    def raw(own, parent):
        return '{"span": {"spanId": "%s", "parentSpanId": "%s"}}' % (own, parent)

    rows = [(0, "child", "a", 1, 0.0, "p › child", None, None, None, None, 1.0, raw("b", "a")),
            (1, "parent", "a", 1, 5.0, "parent", None, None, None, None, 9.0, raw("a", "")),
            (2, "x", "a", 1, 6.0, "x", None, None, None, None, 1.0, raw("x", "y")),
            (3, "y", "a", 1, 7.0, "y", None, None, None, None, 1.0, raw("y", "x"))]
    built = trace.assemble_spans(rows, spec=TRACE)
    assert [r.action for r in built.rounds] == ["parent", "y"]
    assert [c.action for c in built.rounds[0].children] == ["child"]


@pytest.mark.django_db
def test_the_trace_page_shows_the_span_tree_and_a_spans_facts(client_in, import_otlp):
    run = import_otlp("agent_trace.jsonl")
    page = client_in.get(f"/runs/{run.pk}/trace/?node=2").content.decode()
    assert '<details class="trace-span" open' in page and "execute_tool get_weather" in page
    assert "Span id" in page and "eee19b7ec3c1b176" in page and "400.0 ms" in page
    assert "Spans under their parents" in page and "derived from the log" not in page


@pytest.mark.django_db
def test_a_branchs_select_link_is_beside_its_summary_not_inside_it(client_in, import_otlp):
    run = import_otlp("agent_trace.jsonl")
    page = client_in.get(f"/runs/{run.pk}/trace/").content.decode()
    summary = page[page.index("<summary>"):page.index("</summary>")]
    assert "<a " not in summary and 'class="node branch-link' in page


@pytest.mark.django_db
def test_the_tokens_of_a_trace_are_its_chat_spans_by_agent_and_model_with_their_durations(import_otlp):
    run = import_otlp("agent_trace.jsonl")
    found = tokens.with_waits(tokens.calls(run=run, spec=LLM, table={}), run=run, spec=LLM)
    assert [(c.seq, c.agent, c.model, c.input, c.output, c.wait_ms) for c in found] == [
        (1, "planner", "gpt-4o-mini", 97, 52, 1600.0), (3, "planner", "gpt-4o-mini", 164, 38, 2120.0)]
    assert tokens.report(found)["total"] == {"calls": 2, "input": 261, "output": 90, "cost": None}


@pytest.mark.django_db
def test_the_llm_page_of_a_trace_lists_its_calls_by_trace_with_their_durations_and_no_replay_readiness(
        client_in, import_otlp):
    run = import_otlp("agent_trace.jsonl")
    page = client_in.get(f"/runs/{run.pk}/llm/").content.decode()
    assert "gpt-4o-mini" in page and "planner" in page and "By trace" in page
    assert "their spans' durations" in page and "2.12 s" in page
    assert "Replay readiness" not in page and "derived from the log" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("metric, expected", [
    ("spans", {("invoke_agent", "planner"): 1, ("chat", "planner"): 2, ("execute_tool", "planner"): 1}),
    ("tokens", {("invoke_agent", "planner"): None, ("chat", "planner"): 351.0}),
    ("duration", {("invoke_agent", "planner"): 4200.0, ("chat", "planner"): 1860.0, ("execute_tool", "planner"): 400.0}),
])
def test_cells_are_operation_by_agent(import_otlp, metric, expected):
    run = import_otlp("agent_trace.jsonl")
    chosen = cells.metric_by_key(list(CELLS.metrics), metric)
    grid = CELLS.build(cells.empty_grid(CELLS.x_title, CELLS.y_title), run=run, filters={}, metric=chosen, cylinder="both")
    assert grid["y"] == ["invoke_agent", "chat", "execute_tool"] and grid["x"] == ["planner"]
    got = {(c["y"], c["x"]): c["value"] for c in grid["cells"]}
    assert got == {k: v for k, v in expected.items() if v is not None}


@pytest.mark.django_db
def test_the_replay_state_is_the_open_spans_and_the_tokens_so_far(import_otlp):
    from viewer.models import Decision

    run = import_otlp("agent_trace.jsonl")
    rows = list(Decision.objects.filter(run=run).order_by("seq").values("seq", "action", "agent", "round", "t_ms",
                                                                         "metric", "values"))
    reducer = reducer_for(REPLAY)
    state = reducer.initial()
    seen = []
    for d in rows:
        reducer.fold(state, d)
        seen.append(([s["action"] for s in state["open"]], dict(state["tokens"])))
    assert seen == [
        (["invoke_agent"], {"calls": 0, "input": 0, "output": 0}),
        (["invoke_agent", "chat"], {"calls": 1, "input": 97, "output": 52}),
        (["invoke_agent", "execute_tool"], {"calls": 1, "input": 97, "output": 52}),  # the first chat ended
        (["invoke_agent", "chat"], {"calls": 2, "input": 261, "output": 90}),
    ]


@pytest.mark.django_db
def test_a_diff_of_two_runs_of_traces_aligns_spans_by_agent_operation_and_name_path(client_in, import_otlp):
    a, b = import_otlp("agent_trace.jsonl"), import_otlp("two_traces.jsonl")
    page = client_in.get(f"/diff/?a={a.pk}&b={b.pk}")
    assert page.status_code == 200
    assert kinds.profile(a).diff.key == ("agent", "action", "reason")
    assert "invoke_agent planner › chat gpt-4o-mini" in page.content.decode()


@pytest.mark.django_db
def test_the_kind_is_named_trace_in_the_api_and_the_runs_list(client_in, import_otlp):
    run = import_otlp("agent_trace.jsonl")
    assert run.kind == "trace"
    assert client_in.get(f"/api/runs/{run.pk}").json()["kind"] == "trace"
    assert "OpenTelemetry trace" in client_in.get("/").content.decode()


@pytest.mark.django_db
def test_a_gzipped_otlp_file_imports_as_a_trace_whatever_its_name(user, tmp_path):
    import gzip

    path = tmp_path / "spans.log.gz"
    path.write_bytes(gzip.compress((OTLP / "agent_trace.jsonl").read_bytes()))
    (result,) = run_ingest(owner=user, sources=[Source(name=path.name, path=path, group="test")])
    assert result.status == "imported", result.message
    assert result.run.kind == "trace" and result.run.decision_count == 4


@pytest.mark.django_db
def test_a_broken_otlp_file_is_refused_naming_the_file_and_line_and_stores_nothing(user):
    from viewer.models import Decision, Run

    (result,) = run_ingest(owner=user, sources=[Source(name="broken_line.jsonl", path=OTLP / "broken_line.jsonl",
                                                       group="test")])
    assert result.status == "error"
    assert result.message.startswith("broken_line.jsonl: line 2: invalid JSON")
    assert not Run.objects.exists() and not Decision.objects.exists()


@pytest.mark.django_db
def test_a_traces_duration_runs_to_its_last_spans_end_not_its_last_start(import_otlp):
    import json

    spans = [s for line in (OTLP / "agent_trace.jsonl").read_text().splitlines() if line.strip()
             for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    first = min(int(s["startTimeUnixNano"]) for s in spans)
    last_end = max(int(s["endTimeUnixNano"]) for s in spans)
    run = import_otlp("agent_trace.jsonl")
    assert run.duration_ms == pytest.approx((last_end - first) / 1e6, abs=0.01)
    assert run.duration_ms > (run.last_ts - run.first_ts).total_seconds() * 1000
