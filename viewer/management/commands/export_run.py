"""`manage.py export_run ID --format FMT [--out FILE] [filters]`: the page's exports from the shell,
`--format pdf` the audit trail printed to PDF as /runs/<id>/export.pdf gives it (viewer/pdf.py).

The filter options carry the querystring's names (`--rpm-min` is `rpm_min`) and go through
DecisionFilterForm, so they parse and fail exactly as on the page.
"""
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict

from viewer import exports, kinds
from viewer import filters as F
from viewer.models import Run

REPEATABLE = (F.ACTION, F.VALUE, F.LABEL)
PDF = "pdf"  # the audit trail printed (viewer/pdf.py), not one of the text exports


class Command(BaseCommand):
    help = ("Export a run's decisions (filtered as on the run page) as csv, html, txt, json, jsonl, otlp "
            "(OTLP/JSON Lines) or pdf (the audit trail printed).")

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int, metavar="ID")
        parser.add_argument("--format", required=True, choices=(*exports.FORMATS, PDF))
        parser.add_argument("--out", help="write to this file (default: standard output)")
        for name in F.ALL_PARAMS:
            flags = ["--" + name.replace("_", "-")]
            if name == F.VALUE:
                flags = ["--value", "--v"]
            elif "_" in name:
                flags.append("--" + name)
            if name in REPEATABLE:
                parser.add_argument(*flags, dest=name, action="append", help="repeatable")
            else:
                parser.add_argument(*flags, dest=name)

    def handle(self, *args, run_id, format, out, **options):
        run = Run.objects.filter(pk=run_id).first() if run_id < 2**63 else None
        if run is None:
            raise CommandError(f"no run with id {run_id}")
        query = QueryDict(mutable=True)
        for name in F.ALL_PARAMS:
            value = options.get(name)
            if value is not None:
                query.setlist(name, value if isinstance(value, list) else [value])
        form = F.DecisionFilterForm(query)
        if not form.is_valid():
            raise CommandError(form.error_text())
        kind = kinds.profile(run)
        if format == PDF:
            return self._pdf(run, form, kind, out)
        chunks = exports.export_chunks(run, format, form, raw_is_decision=kind.raw_is_decision, llm=kind.llm,
                                       otlp_record=kind.otlp_record, words=kind.words)
        if out:
            with open(out, "w", encoding="utf-8", newline="") as f:
                f.writelines(chunks)
            name = exports.export_filename(run, format, form, replay_file=kind.replay_file)
            self.stderr.write(f"{name} -> {out}")
        else:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")

    def _pdf(self, run, form, kind, out):
        from viewer import pdf

        if not out:
            raise CommandError("a PDF is written to a file: add --out FILE.pdf")
        try:
            data = pdf.audit_pdf(run, form, words=kind.words)
        except pdf.TooBig as exc:
            raise CommandError(str(exc)) from None
        with open(out, "wb") as f:
            f.write(data)
        self.stderr.write(f"{exports.export_filename(run, PDF, form)} -> {out}")
