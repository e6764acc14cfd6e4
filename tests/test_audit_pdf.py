"""viewer.pdf and /runs/<id>/export.pdf: the audit trail printed on the server (issue 20.5)."""
import io
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import QueryDict
from pypdf import PdfReader

from viewer import kinds, notes, pdf, shares
from viewer.filters import DecisionFilterForm
from viewer.models import Decision

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"
DEBT = "session/session_debt_auction_ambush.jsonl"
REAL = "dynoai/real_sample/session_replay.json"
A4_LANDSCAPE = (842, 595)  # points, rounded


def audit_pdf(run, query=""):
    form = DecisionFilterForm(QueryDict(query))
    assert form.is_valid(), form.errors
    return pdf.audit_pdf(run, form, words=kinds.profile(run).words)


def text_of(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


def test_25_decisions_of_the_heaviest_session_sample_print_to_at_most_8_a4_pages(import_sample):
    run = import_sample(DEBT)  # an LLM call's prompt and response on most decisions
    reader = PdfReader(io.BytesIO(audit_pdf(run, "limit=25")))
    assert len(reader.pages) <= 8
    assert {(round(p.mediabox.width), round(p.mediabox.height)) for p in reader.pages} == {A4_LANDSCAPE}


def test_the_pdf_says_what_the_html_audit_says_filters_included(import_sample, user, samples_dir):
    run = import_sample(REAL, "dynoai/real_sample/manifest.json")
    grads = Decision.objects.filter(run=run, action__icontains="grad").order_by("seq")
    notes.add(run, user, seq=grads[1].seq, text="Clamp looks *right* here", labels=["ok"])
    text = text_of(audit_pdf(run, "action=grad"))
    assert "Audit trail" in text and run.sha256 in text.replace(" ", "")
    assert "does not match" in text and "action contains “grad”" in text
    assert f"{grads.count()} decisions of {run.decision_count}" in text
    assert "Clamp looks right here" in text and "ok" in text
    assert "SMOOTHING" not in text.upper().replace("SMOOTHING_PASSES", "")  # filtered out


def test_a_pdf_fetches_nothing_even_when_its_html_names_a_resource(monkeypatch):
    asked = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: asked.append(addr))
    html = ('<html><head><link rel="stylesheet" href="http://192.0.2.1/x.css"></head><body>'
            '<img src="http://192.0.2.1/x.png"><img src="file:///etc/hostname">text</body></html>')
    data = pdf.render([html])
    assert data.startswith(b"%PDF") and not asked
    with pytest.raises(ValueError):
        pdf.NoFetch().fetch("http://192.0.2.1/x.png")


def test_bidi_controls_are_shown_in_the_pdf_not_obeyed(user):
    data = pdf.render(["<p>evil\u202egnp.exe</p>"])
    assert "U+202E" in text_of(data)


def test_a_selection_over_the_cap_is_refused_saying_to_filter_first(import_sample, monkeypatch):
    run = import_sample(SESSION)
    monkeypatch.setattr(pdf, "MAX_DECISIONS", 10)
    with pytest.raises(pdf.TooBig, match="at most 10 decisions and these filters select 44: narrow the filters"):
        audit_pdf(run)
    assert audit_pdf(run, "limit=10").startswith(b"%PDF")


# -- the page and the command -----------------------------------------------------------------------


def test_export_pdf_is_the_filtered_audit_trail_as_a_pdf_download(client_in, import_sample):
    run = import_sample(SESSION)
    response = client_in.get(f"/runs/{run.pk}/export.pdf?action=llm_call")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;") and "_decisions.pdf" in response["Content-Disposition"]
    assert "private" in response["Cache-Control"]
    text = text_of(response.content)
    assert "action contains “llm_call”" in text and "8 decisions of 44" in text


def test_export_pdf_over_the_cap_is_a_413_saying_what_to_do(client_in, import_sample, monkeypatch):
    run = import_sample(SESSION)
    monkeypatch.setattr(pdf, "MAX_DECISIONS", 10)
    response = client_in.get(f"/runs/{run.pk}/export.pdf")
    assert response.status_code == 413 and b"narrow the filters" in response.content
    assert "Content-Disposition" not in response
    assert client_in.get(f"/runs/{run.pk}/export.pdf?bogus_min=x&rpm_min=x").status_code == 400


def test_export_pdf_is_the_owners_and_an_audit_links_and_no_one_elses(client, import_sample, user, other_user):
    run = import_sample(SESSION)
    client.force_login(other_user)
    assert client.get(f"/runs/{run.pk}/export.pdf").status_code == 404
    client.logout()
    link = shares.create_link(run, by=user, scope="audit")
    client.get(shares.link_path(link))
    response = client.get(f"/runs/{run.pk}/export.pdf?limit=3")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")


def test_export_run_writes_the_pdf_and_needs_a_file_for_it(import_sample, tmp_path):
    run = import_sample(SESSION)
    out = tmp_path / "audit.pdf"
    call_command("export_run", str(run.pk), "--format", "pdf", "--limit", "5", "--out", str(out), stderr=io.StringIO())
    assert "5 decisions of 44" in text_of(out.read_bytes())
    with pytest.raises(CommandError, match="--out"):
        call_command("export_run", str(run.pk), "--format", "pdf")


def test_the_export_list_offers_the_pdf_beside_the_html_audit(client_in, import_sample):
    run = import_sample(SESSION)
    page = client_in.get(f"/runs/{run.pk}/?action=llm_call").content.decode()
    assert f'href="/runs/{run.pk}/export.pdf?action=llm_call"' in page
