"""/diff/ and /diff/export.<fmt>: the page, its fragments, exports, ownership and escaping."""

import csv
import io
import json
import re

import pytest

from viewer import diff

DYNO_A = ("dynoai/runs/large200k_s2_c7/session_replay.json", "dynoai/runs/large200k_s2_c7/manifest.json")
DYNO_B = ("dynoai/runs/large200k_s4_c10/session_replay.json", "dynoai/runs/large200k_s4_c10/manifest.json")
SESSION_A = "session/session_debt_auction_ambush.jsonl"
SESSION_B = "session/session_debt_auction_ambush_replay.jsonl"
FORMULA = ("=", "+", "-", "@", "\t", "\r")

pytestmark = pytest.mark.django_db


@pytest.fixture
def dyno_pair(import_sample):
    return import_sample(*DYNO_A), import_sample(*DYNO_B)


@pytest.fixture
def session_pair(import_sample):
    return import_sample(SESSION_A), import_sample(SESSION_B)


def url(a, b, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/diff/?a={a.pk}&b={b.pk}" + (f"&{query}" if query else "")


# --- the page ------------------------------------------------------------------------------------


def test_the_real_dynoai_pair_shows_the_settings_that_changed(client_in, dyno_pair, samples_dir):
    args = [json.loads((samples_dir / m).read_text())["config"]["args"] for _, m in (DYNO_A, DYNO_B)]
    assert (args[0]["smooth_passes"], args[1]["smooth_passes"], args[0]["clamp"], args[1]["clamp"]) == (
        2,
        4,
        7.0,
        10.0,
    )
    expected = {k: (args[0][k], args[1][k]) for k in args[0] if args[0][k] != args[1][k]}

    response = client_in.get(url(*dyno_pair))
    assert response.status_code == 200
    changed = {s.path: (s.a, s.b) for s in response.context["settings_changed"]}
    assert changed == expected
    assert {"smooth_passes", "clamp"} <= changed.keys()
    assert response.context["settings_same"]
    html = response.content.decode()
    row = re.search(r'<th scope="row" class="mono">smooth_passes</th>(.*?)</tr>', html, re.S).group(1)
    assert ">2<" in row and ">4<" in row and "+2" in row
    row = re.search(r'<th scope="row" class="mono">clamp</th>(.*?)</tr>', html, re.S).group(1)
    assert ">7.0<" in row and ">10.0<" in row and "+3" in row


def test_the_real_dynoai_pair_lists_the_changed_gradient_limiting_values_with_deltas(
    client_in, dyno_pair, samples_dir
):
    docs = [json.loads((samples_dir / r).read_text())["decisions"] for r, _ in (DYNO_A, DYNO_B)]
    grads = [
        {
            (d["cell"]["rpm_index"], d["cell"]["kpa_index"]): d["values"]
            for d in doc
            if d["action"] == "GRADIENT_LIMITING"
        }
        for doc in docs
    ]
    expected = {
        (f"RPM[{c[0]}] KPA[{c[1]}]", k, v, grads[1][c][k])
        for c, values in grads[0].items()
        for k, v in values.items()
        if v != grads[1][c][k]
    }

    response = client_in.get(url(*dyno_pair))
    rows = [r for r in response.context["rows_page"] if r["action"] == "GRADIENT_LIMITING"]
    assert all(r["status"] == "changed" for r in rows)
    found = set()
    for r in rows:
        for c in r["changes"]:
            found.add((r["where"], c["path"], float(c["old"]), float(c["new"])))
            assert c["delta"] == pytest.approx(float(c["new"]) - float(c["old"]))
            assert c["delta_text"] == f"{c['delta']:+g}"
    assert found == expected
    html = response.content.decode()
    assert "smoothed" in html and "(+0.03)" in html


def test_the_real_dynoai_pair_has_a_per_cell_heatmap_for_plotly(client_in, dyno_pair):
    response = client_in.get(url(*dyno_pair))
    html = response.content.decode()
    assert 'id="diff-heatmap-data"' in html and "plotly-2.35.3.min.js" in html and "js/diff.js" in html
    figure = response.context["heatmap"]
    assert figure["data"][0]["type"] == "heatmap"
    counts = client_in.get(url(*dyno_pair, heat="count")).context["heatmap"]
    assert counts["data"][0]["z"] != figure["data"][0]["z"]


def test_the_session_replay_page_shows_the_first_divergence_and_nothing_before_it(
    client_in, session_pair, samples_dir
):
    lines = [json.loads(x) for x in (samples_dir / SESSION_A).read_text().splitlines()]
    first_r4 = next(
        k for k, e in enumerate(lines) if e["event_type"] == "action_resolution" and e.get("round") == 4
    )

    response = client_in.get(url(*session_pair))
    assert response.status_code == 200
    d = response.context["divergence"]
    assert (d["position"], d["seq_a"], d["seq_b"]) == (first_r4, first_r4, first_r4)
    assert {c["path"] for c in d["changes"]} <= {"roll.d20", "roll.total", "roll.margin", "roll.success"}
    assert {c["path"] for c in d["changes"]} >= {"roll.d20"}
    rows = response.context["rows_page"]
    assert [(r["status"], r["seq_a"]) for r in rows] == [("changed", first_r4)]
    assert response.context["settings_changed"] == []
    html = response.content.decode()
    a, b = session_pair
    assert (
        f'href="/runs/{a.pk}/decisions/{first_r4}/"' in html
        and f'href="/runs/{b.pk}/decisions/{first_r4}/"' in html
    )


def test_a_run_compared_with_itself_shows_no_differences(client_in, session_pair):
    a, _ = session_pair
    response = client_in.get(url(a, a))
    assert response.context["result"].identical and response.context["divergence"] is None
    assert response.context["rows_page"] == []
    assert "No differences." in response.content.decode()


def test_swapping_the_runs_swaps_only_in_a_and_only_in_b(client_in, dyno_pair):
    a, b = dyno_pair
    ab = client_in.get(url(a, b)).context["counts"]
    ba = client_in.get(url(b, a)).context["counts"]
    assert (ab["only_a"], ab["only_b"], ab["changed"]) == (ba["only_b"], ba["only_a"], ba["changed"])
    assert ab["only_a"] != ab["only_b"]


def test_all_decisions_lists_the_same_rows_too(client_in, session_pair):
    response = client_in.get(url(*session_pair, rows="all"))
    rows = response.context["rows_page"]
    assert len(rows) == min(123, 200) and {r["status"] for r in rows} == {"same", "changed"}


def test_the_run_filters_apply_to_both_sides(client_in, dyno_pair):
    response = client_in.get(url(*dyno_pair, action="gradient", rows="all"))
    result = response.context["result"]
    assert set(result.a.action) == set(result.b.action) == {"GRADIENT_LIMITING"}
    assert len(result.a) == len(result.b) == 23
    only_afr = client_in.get(url(*dyno_pair, action="AFR")).context
    assert only_afr["result"].identical


def test_a_bad_filter_is_shown_on_the_page_and_is_a_400_on_the_fragment(client_in, dyno_pair):
    response = client_in.get(url(*dyno_pair, rpm="lots"))
    assert response.status_code == 200 and "result" not in response.context
    assert "rpm" in response.context["form"].errors
    assert 'id="diff-errors"' in response.content.decode()
    fragment = client_in.get(url(*dyno_pair, rpm="lots"), headers={"HX-Request": "true"})
    assert fragment.status_code == 400 and fragment.content.decode().startswith("rpm:")
    bad_rows = client_in.get(url(*dyno_pair, rows="some"), headers={"HX-Request": "true"})
    assert bad_rows.status_code == 400 and b"rows:" in bad_rows.content


def test_htmx_gets_the_diff_body_and_show_more_gets_the_next_rows(client_in, session_pair):
    response = client_in.get(url(*session_pair), headers={"HX-Request": "true", "HX-Target": "diff-body"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="diff-body">') and "<html" not in html
    assert response["Vary"] and "HX-Request" in response["Vary"]
    more = client_in.get(
        url(*session_pair, rows="all", start=100), headers={"HX-Request": "true", "HX-Target": "diff-more"}
    )
    html = more.content.decode()
    assert html.lstrip().startswith("<tr") and "diff-body" not in html
    a, _ = session_pair
    assert re.findall(rf'href="/runs/{a.pk}/decisions/(\d+)/"', html) == [str(k) for k in range(100, 123)]


def test_show_more_is_a_real_link_as_well(client_in, import_sample, gen_pair):
    a, b = gen_pair
    response = client_in.get(url(a, b, rows="all"))
    assert response.context["next_start"] == 200
    html = response.content.decode()
    link = re.search(r'<tr id="diff-more"><td colspan="6"><a href="([^"]+)" hx-get="([^"]+)"', html)
    assert link and link.group(1) == link.group(2) and "start=200" in link.group(1)
    page2 = client_in.get("/diff/" + link.group(1).replace("&amp;", "&"))
    assert page2.context["start"] == 200 and page2.context["prev_start"] == 0


@pytest.fixture
def gen_pair(samples_dir, tmp_path, user):
    import importlib.util

    from viewer.ingest import Source, run_ingest

    spec = importlib.util.spec_from_file_location("gen_logs", samples_dir.parent / "tools" / "gen_logs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.write_dyno(str(tmp_path / "a.json"), 3000, 5, 0.0)
    gen.write_dyno(str(tmp_path / "b.json"), 3000, 5, 0.05)
    results = run_ingest(
        owner=user, sources=[Source(n, path=tmp_path / n, group=n) for n in ("a.json", "b.json")]
    )
    return results[0].run, results[1].run


LLM_LINE = 14  # the DM's adjudication call in round 1 of the debt auction


def changed_llm_pair(samples_dir, tmp_path, user, change, base=None):
    """The debt auction (A) and a copy with one llm_call's response changed by `change` (B);
    `base` changes that response on both sides first."""
    from viewer.ingest import Source, run_ingest

    lines = (samples_dir / SESSION_A).read_text().splitlines()
    for name, how in (("a", lambda t: t), ("b", change)):
        event = json.loads(lines[LLM_LINE])
        event["response"] = how(base(event["response"]) if base else event["response"])
        changed = lines[:LLM_LINE] + [json.dumps(event)] + lines[LLM_LINE + 1 :]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(changed) + "\n")
    sources = [Source(n, path=tmp_path / n, group=n) for n in ("a.jsonl", "b.jsonl")]
    results = run_ingest(owner=user, sources=sources)
    return results[0].run, results[1].run


def test_a_changed_llm_call_shows_its_response_side_by_side_with_the_changed_words_marked(
    client_in, samples_dir, tmp_path, user
):
    def change(text):
        text = text.replace("fractal-trained perception", "quantum-tuned instinct", 1)
        return text.replace("prism", "lens", 1)

    a, b = changed_llm_pair(samples_dir, tmp_path, user, change)
    response = client_in.get(url(a, b))
    (row,) = response.context["rows_page"]
    assert (row["status"], row["seq_a"], row["action"]) == ("changed", LLM_LINE, "llm_call")
    (text,) = row["texts"]
    assert text["path"] == "response"
    html = response.content.decode()
    detail = html[html.index('class="st-changed text-row"') :]
    for word in ("fractal", "trained", "perception", "prism"):
        assert f"<del>{word}</del>" in detail
    for word in ("quantum", "tuned", "instinct", "lens"):
        assert f"<ins>{word}</ins>" in detail
    assert "<del>dissects</del>" not in detail and "dissects the void-tainted smoke" in detail
    assert (text["text"].deleted, text["text"].inserted) == (4, 4)


def test_the_first_divergence_names_its_round_agent_and_event_type(client_in, samples_dir, tmp_path, user):
    a, b = changed_llm_pair(samples_dir, tmp_path, user, lambda text: text + " And then, silence.")
    response = client_in.get(url(a, b))
    agent = (a.agents or {}).get("dm_01") or "dm_01"
    assert response.context["divergence"]["place"] == f"round 1 · {agent} · llm_call"
    html = response.content.decode()
    assert f'<strong class="divergence-place">round 1 · {agent} · llm_call</strong>' in html


def test_a_changed_text_full_of_markup_is_shown_as_text(client_in, samples_dir, tmp_path, user):
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    a, b = changed_llm_pair(samples_dir, tmp_path, user, lambda text: text.replace("prism", hostile, 1))
    html = client_in.get(url(a, b)).content.decode()
    detail = html[html.index('class="st-changed text-row"') :]
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in detail


def test_a_long_changed_text_shows_the_changed_lines_first_and_the_whole_texts_behind_a_summary(
    client_in, samples_dir, tmp_path, user
):
    a, b = changed_llm_pair(samples_dir, tmp_path, user, lambda text: text.replace("prism", "lens", 1),
                            base=lambda text: "\n".join([text] * 20))
    response = client_in.get(url(a, b))
    (row,) = response.context["rows_page"]
    side = row["texts"][0]["text"].b
    assert side.shortened and side.lines == 20 and side.chars > 15_000
    assert [line.number for line in side.excerpt if not line.gap] == [1, 2]
    assert "The whole texts, side by side" in response.content.decode()


# --- choosing the runs ---------------------------------------------------------------------------


def test_the_runs_list_compare_form_redirects_to_a_and_b(client_in, dyno_pair):
    a, b = dyno_pair
    response = client_in.get(f"/diff/?run={a.pk}&run={b.pk}")
    assert response.status_code == 302 and response["Location"] == f"/diff/?a={a.pk}&b={b.pk}"
    one = client_in.get(f"/diff/?run={a.pk}")
    assert one.status_code == 302 and one["Location"] == f"/diff/?a={a.pk}"
    three = client_in.get(f"/diff/?run={a.pk}&run={b.pk}&run={a.pk}")
    assert three.status_code == 400 and "Tick two runs" in three.content.decode()
    assert client_in.get("/diff/?run=x").status_code == 400


def test_the_runs_list_has_the_compare_form(client_in, dyno_pair):
    html = client_in.get("/").content.decode()
    assert 'action="/diff/"' in html and 'name="run"' in html


def test_with_only_a_the_page_offers_the_users_other_runs(
    client_in, dyno_pair, session_pair, import_sample, other_user
):
    foreign = import_sample(SESSION_A, owner=other_user)
    a = dyno_pair[0]
    response = client_in.get(f"/diff/?a={a.pk}")
    assert response.status_code == 200
    picked = [r.pk for r in response.context["pick"]]
    assert a.pk not in picked and foreign.pk not in picked
    assert set(picked) == {dyno_pair[1].pk, *(r.pk for r in session_pair)}
    assert picked[0] == dyno_pair[1].pk  # the same kind first
    assert f'href="/diff/?a={a.pk}&amp;b={dyno_pair[1].pk}"' in response.content.decode()


def test_without_runs_the_page_offers_both_choices(client_in, dyno_pair):
    response = client_in.get("/diff/")
    assert response.status_code == 200 and len(response.context["choose"]) == 2


def test_a_foreign_run_is_a_404_everywhere(client_in, dyno_pair, import_sample, other_user):
    foreign = import_sample(SESSION_A, owner=other_user)
    mine = dyno_pair[0]
    for path in (
        f"/diff/?a={mine.pk}&b={foreign.pk}",
        f"/diff/?a={foreign.pk}&b={mine.pk}",
        f"/diff/?a={foreign.pk}",
        f"/diff/export.csv?a={mine.pk}&b={foreign.pk}",
        f"/diff/export.html?a={foreign.pk}&b={mine.pk}",
    ):
        assert client_in.get(path).status_code == 404, path


def test_logged_out_users_are_sent_to_log_in(client, dyno_pair):
    response = client.get(url(*dyno_pair))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- exports -------------------------------------------------------------------------------------


def read_csv(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_export_lists_each_changed_value_with_its_delta(client_in, session_pair, samples_dir):
    lines = [
        [json.loads(x) for x in (samples_dir / p).read_text().splitlines()] for p in (SESSION_A, SESSION_B)
    ]
    first_r4 = next(
        k for k, e in enumerate(lines[0]) if e["event_type"] == "action_resolution" and e.get("round") == 4
    )
    roll_a, roll_b = lines[0][first_r4]["roll"], lines[1][first_r4]["roll"]
    a, b = session_pair
    response = client_in.get(f"/diff/export.csv?a={a.pk}&b={b.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, *rows = read_csv(response)
    assert header == [
        "status",
        "a_seq",
        "b_seq",
        "action",
        "where",
        "path",
        "a_value",
        "b_value",
        "delta",
        "reason",
    ]
    expected = sorted(
        [
            "changed",
            str(first_r4),
            str(first_r4),
            "action_resolution",
            f"round 4 · {lines[0][first_r4]['agent']}",
            f"roll.{k}",
            str(roll_a[k]),
            str(roll_b[k]),
            str(roll_b[k] - roll_a[k]),
            "",
        ]
        for k in roll_a
        if roll_a[k] != roll_b[k]
    )
    assert sorted(rows) == expected


def test_the_csv_export_with_all_rows_has_every_decision(client_in, session_pair):
    a, b = session_pair
    _, *rows = read_csv(client_in.get(f"/diff/export.csv?a={a.pk}&b={b.pk}&rows=all"))
    assert len([r for r in rows if r[0] == "same"]) == 122


def test_the_html_export_is_self_contained(client_in, dyno_pair):
    a, b = dyno_pair
    response = client_in.get(f"/diff/export.html?a={a.pk}&b={b.pk}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<script" not in html.lower() and "<style>" in html
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html
    assert "smooth_passes" in html and "GRADIENT_LIMITING" in html
    assert "default-src 'none'" in response["Content-Security-Policy"]


def test_exports_need_both_runs_and_good_parameters(client_in, dyno_pair):
    a, b = dyno_pair
    assert client_in.get(f"/diff/export.csv?a={a.pk}").status_code == 400
    bad = client_in.get(f"/diff/export.csv?a={a.pk}&b={b.pk}&kpa_min=x")
    assert bad.status_code == 400 and bad.content.decode().startswith("kpa_min:")
    assert client_in.get(f"/diff/export.pdf?a={a.pk}&b={b.pk}").status_code == 404


# --- hostile logs --------------------------------------------------------------------------------


@pytest.fixture
def hostile_pair(import_sample):
    return import_sample("dynoai/real_sample/session_replay.json"), import_sample(
        "hostile/xss_session_replay.json"
    )


def test_hostile_strings_stay_inert_on_the_page(client_in, hostile_pair):
    response = client_in.get(url(*hostile_pair, rows="all"))
    html = response.content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>BOLD_ACTION" not in html
    assert "&lt;script&gt;alert" in html
    # The only scripts are our own files and JSON data blocks.
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'type="application/json"' in tag or re.search(r'src="/static/', tag), tag


def test_hostile_strings_stay_inert_in_the_exports(client_in, hostile_pair):
    a, b = hostile_pair
    html = client_in.get(f"/diff/export.html?a={a.pk}&b={b.pk}").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    _, *rows = read_csv(client_in.get(f"/diff/export.csv?a={a.pk}&b={b.pk}"))
    cells = [c for row in rows for c in row]
    assert any(c.startswith("'=") for c in cells)
    for c in cells:
        if c.startswith(FORMULA):
            float(c)  # only a number may start with a sign


def test_the_page_diff_matches_the_module(client_in, dyno_pair):
    response = client_in.get(url(*dyno_pair))
    result = response.context["result"]
    assert result.counts == {s: sum(1 for r in result.rows if r.status == s) for s in diff.STATUSES}


# --- the API -------------------------------------------------------------------------------------


def test_the_api_diff_gives_the_same_answer_as_the_page(client_in, session_pair, samples_dir):
    a, b = session_pair
    page = client_in.get(url(a, b)).context
    response = client_in.get(f"/api/diff?a={a.pk}&b={b.pk}")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["counts"] == page["counts"] and data["identical"] is False
    d = data["first_divergence"]
    assert (d["position"], d["a_seq"], d["b_seq"]) == (page["divergence"]["position"],) * 3
    assert {c["path"] for c in d["changes"]} == {c["path"] for c in page["divergence"]["changes"]}
    assert [(r["status"], r["a_seq"], r["b_seq"]) for r in data["rows"]] == [
        (r["status"], r["seq_a"], r["seq_b"]) for r in page["rows_page"]
    ]
    assert data["settings"] == [] and data["next"] is None


def test_the_api_diff_pages_and_filters(client_in, dyno_pair):
    a, b = dyno_pair
    data = client_in.get(f"/api/diff?a={a.pk}&b={b.pk}&rows=all&limit=100&action=gradient").json()
    assert data["total_rows"] == 23 and len(data["rows"]) == 23 and data["next"] is None
    data = client_in.get(f"/api/diff?a={a.pk}&b={b.pk}&rows=all&limit=100").json()
    assert len(data["rows"]) == 100 and data["next"] == 100
    settings = {s["path"]: (s["a"], s["b"], s["delta"]) for s in data["settings"]}
    assert settings["smooth_passes"] == (2, 4, 2) and settings["clamp"] == (7.0, 10.0, 3.0)


def test_the_api_diff_refuses_foreign_runs_and_bad_parameters(
    client_in, dyno_pair, import_sample, other_user
):
    a, _ = dyno_pair
    foreign = import_sample(SESSION_A, owner=other_user)
    assert client_in.get(f"/api/diff?a={a.pk}&b={foreign.pk}").status_code == 404
    missing = client_in.get(f"/api/diff?a={a.pk}")
    assert missing.status_code == 400 and "b" in missing.json()["detail"]
    bad = client_in.get(f"/api/diff?a={a.pk}&b={a.pk}&rpm=x")
    assert bad.status_code == 400 and bad.json()["detail"].startswith("rpm:")


# --- issue 12: one htmx helper, kinds by profile, one heatmap, one text module ---------------------


def test_the_fragment_is_picked_by_hx_target_and_the_answer_varies_on_it(client_in, session_pair):
    body = client_in.get(url(*session_pair), headers={"HX-Request": "true", "HX-Target": "diff-body"})
    assert body.content.decode().lstrip().startswith('<div id="diff-body">')
    assert {"HX-Request", "HX-Target"} <= {v.strip() for v in body["Vary"].split(",")}
    # Another part of the page (or none) gets the page: a cache keyed on HX-Request alone could not tell.
    other = client_in.get(url(*session_pair), headers={"HX-Request": "true", "HX-Target": "elsewhere"})
    assert "<html" in other.content.decode()
    restore = client_in.get(
        url(*session_pair),
        headers={"HX-Request": "true", "HX-Target": "diff-body", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.content.decode()


def test_runs_of_different_kinds_are_compared_by_action_and_the_page_says_so(
    client_in, dyno_pair, session_pair
):
    a, b = dyno_pair[0], session_pair[0]
    response = client_in.get(url(a, b))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="diff-kinds"' in html and "Runs of different kinds" in html
    assert "aligned by action, then" in html and response.context["heatmap"] is None
    assert response.context["settings_changed"] == response.context["settings_same"] == []
    assert "they are not compared" in html
    # Both kinds' own filter inputs are offered.
    assert 'name="rpm"' in html and 'name="round"' in html
    same = client_in.get(url(*dyno_pair)).content.decode()
    assert 'id="diff-kinds"' not in same and "aligned by action and cell" in same


def test_filters_without_an_input_ride_along_hidden(client_in, dyno_pair):
    html = client_in.get(url(*dyno_pair, round=3, cylinder="f")).content.decode()
    assert '<input type="hidden" name="round" value="3">' in html
    assert '<input type="hidden" name="cylinder" value="f">' in html
    assert '<input type="hidden" name="rpm"' not in html


def test_the_delta_heatmap_has_rpm_rows_and_kpa_columns(client_in, dyno_pair):
    figure = client_in.get(url(*dyno_pair)).context["heatmap"]
    trace, layout = figure["data"][0], figure["layout"]
    assert layout["yaxis"]["title"]["text"] == "RPM" and layout["xaxis"]["title"]["text"] == "kPa"
    assert [int(v) for v in trace["y"]] == sorted(int(v) for v in trace["y"])
    assert (
        layout["yaxis"]["autorange"] == "reversed"
    )  # as the toolkit's grid CSVs read: RPM ascends downwards
    hover = [h for row in trace["customdata"] for h in row if h]
    assert hover and all(h.startswith("<b>RPM ") and " · kPa " in h for h in hover)


def test_durations_read_as_people_read_them(client_in, session_pair):
    summary = client_in.get(url(*session_pair)).context["report"].summary
    assert summary["duration_a"] == summary["duration_b"]  # (the replay keeps the session's pace)
    assert re.fullmatch(r"\d+ min \d\d s", summary["duration_a"]), summary[
        "duration_a"
    ]  # never "1127482.0ms"


@pytest.fixture
def made_up_pair(user):
    """Two runs of a kind registered for this test: its diff aligns by action and agent, and says
    where a decision sits as "desk <agent>"."""
    from viewer import kinds
    from viewer.diff import DiffSpec
    from viewer.models import Decision, Run

    spec = DiffSpec(
        columns=("agent",),
        key=("action", "agent"),
        where=lambda row, run: f"desk {row['agent']}",
        settings=lambda run: dict(run.settings),
        settings_source="the ledger's header",
    )
    kinds.register(
        kinds.Profile(
            name="ledger", label="Ledger", reader="", words=kinds.Words(align="action and desk"), diff=spec
        )
    )
    runs = []
    for n, amounts in enumerate(([5, 7, 9], [5, 8, 9, 1])):
        run = Run.objects.create(
            owner=user,
            name=f"ledger {n}",
            kind="ledger",
            source_name="l",
            size=1,
            sha256=str(n) * 64,
            settings={"rate": 1 + n},
            decision_count=len(amounts),
        )
        Decision.objects.bulk_create(
            Decision(run=run, seq=k, action="post", agent="a" if k % 2 else "b", values={"amount": v}, raw="")
            for k, v in enumerate(amounts)
        )
        runs.append(run)
    yield runs
    kinds.unregister("ledger")


def test_a_new_kind_diffs_through_its_own_spec(client_in, made_up_pair):
    a, b = made_up_pair
    response = client_in.get(url(a, b))
    assert response.status_code == 200
    rows = response.context["rows_page"]
    assert [(r["status"], r["seq_a"], r["seq_b"], r["where"]) for r in rows] == [
        ("changed", 1, 1, "desk a"),
        ("only_b", None, 3, "desk a"),
    ]
    assert [(s.path, s.a, s.b) for s in response.context["settings_changed"]] == [("rate", 1, 2)]
    html = response.content.decode()
    assert "aligned by action and desk" in html and "the ledger&#x27;s header" in html
    assert response.context["heatmap"] is None
    data = client_in.get(f"/api/diff?a={a.pk}&b={b.pk}").json()
    assert [r["where"] for r in data["rows"]] == ["desk a", "desk a"]


def test_a_diff_over_the_memory_bound_is_refused_before_reading_and_says_how_to_narrow_it(
    client_in, import_sample, settings
):
    a = import_sample("dynoai/real_sample/session_replay.json")
    b = import_sample("dynoai/runs/large200k_s2_c7/session_replay.json")
    settings.REPLAYWEB_DIFF_MAX_DECISIONS = a.decision_count + b.decision_count - 1
    page = client_in.get("/diff/", {"a": a.pk, "b": b.pk})
    assert page.status_code == 413
    assert "REPLAYWEB_DIFF_MAX_DECISIONS" in page.content.decode() and "Narrow both sides" in page.content.decode()
    api = client_in.get("/api/diff", {"a": a.pk, "b": b.pk})
    assert api.status_code == 413 and "REPLAYWEB_DIFF_MAX_DECISIONS" in api.json()["detail"]
    export = client_in.get("/diff/export.csv", {"a": a.pk, "b": b.pk})
    assert export.status_code == 413
    # Filters that keep both sides under the bound make it comparable again.
    narrowed = client_in.get("/diff/", {"a": a.pk, "b": b.pk, "action": "CLAMP"})
    assert narrowed.status_code == 200 and "Not compared" not in narrowed.content.decode()


def test_two_runs_of_a_million_decisions_each_are_within_the_diff_bound(client_in, import_sample):
    from viewer.models import Run

    a = import_sample("dynoai/real_sample/session_replay.json")
    b = import_sample("dynoai/runs/large200k_s2_c7/session_replay.json")
    Run.objects.filter(pk__in=[a.pk, b.pk]).update(decision_count=1_000_000)  # what the bound reads
    page = client_in.get("/diff/", {"a": a.pk, "b": b.pk})
    assert page.status_code == 200 and page.context["counts"][diff.ONLY_A] > 0


def test_a_pair_too_big_to_hold_its_texts_reads_them_again_and_shows_the_same_diff(
    client_in, dyno_pair, session_pair, monkeypatch
):
    from viewer import diff_report

    def faces(a, b):
        api = client_in.get("/api/diff", {"a": a.pk, "b": b.pk, "rows": "all", "limit": 1000}).json()
        export = b"".join(client_in.get("/diff/export.csv", {"a": a.pk, "b": b.pk, "rows": "all"}).streaming_content)
        page = client_in.get(url(a, b, volatile="on"))
        return api, export, page.context["heatmap"], page.context["divergence"], page.context["rows_page"]

    held = [faces(*dyno_pair), faces(*session_pair)]
    monkeypatch.setattr(diff_report, "HOLD_TEXTS", 0)  # every pair now reads its texts again from the database
    assert [faces(*dyno_pair), faces(*session_pair)] == held
    assert held[0][0]["counts"]["changed"] > 0 and held[1][0]["counts"]["changed"] > 0


def test_three_ticked_runs_offer_two_of_them_and_the_side_by_side_compare(client_in, import_sample):
    a = import_sample("dynoai/real_sample/session_replay.json")
    b = import_sample("dynoai/runs/large200k_s2_c7/session_replay.json")
    c = import_sample("dynoai/runs/large200k_s4_c10/session_replay.json")
    import_sample("session/combat_session_sample.jsonl")  # the newest run, not ticked
    page = client_in.get("/diff/", {"run": [c.pk, a.pk, b.pk]}).content.decode()
    assert "You ticked 3 runs" in page
    assert f'href="/compare/?run={a.pk}&amp;run={b.pk}&amp;run={c.pk}"' in page
    selects = page.split('name="a"')[1], page.split('name="b"')[1]
    assert selects[0].split("<option")[1].startswith(f' value="{a.pk}"')  # A starts on the first ticked run
    assert f'value="{b.pk}" selected' in selects[1]  # B on the second, not on the newest run
