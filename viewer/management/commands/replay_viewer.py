"""`manage.py replay_viewer FILE`: DynoAI's `tools/replay_viewer.py`, byte for byte, with no database.

Precedence as in the original: --export (honours --action, ignores --limit) beats --summary-only
(ignores --action), which beats the timeline. Errors go to stderr as one `ERROR: ...` line, exit 1.
Divergences, where the original crashes with a traceback: a document that is not an object is
reported as missing 'decisions'; a `decisions` that is neither a list nor null, and an export file
that cannot be written, are reported as ERROR lines; odd decisions degrade (see viewer.dynoai_text).
"""
import json
from itertools import chain
from pathlib import Path

from django.core.management.base import BaseCommand

from viewer import dynoai_text


def _plain(text):
    return text


class Command(BaseCommand):
    help = "Print a DynoAI session_replay.json exactly as DynoAI's replay_viewer.py does."
    requires_system_checks = []  # reads a file; needs neither the database nor the other apps

    def add_arguments(self, parser):
        parser.add_argument("replay_file", help="Path to session_replay.json file")
        parser.add_argument(
            "--action", help="Filter by action type (e.g., SMOOTHING, CLAMPING, AFR_CORRECTION)"
        )
        parser.add_argument("--limit", type=int, help="Limit number of decisions to display")
        parser.add_argument("--export", help="Export timeline to specified file")
        parser.add_argument("--summary-only", action="store_true", help="Show only summary statistics")

    def handle(self, *args, replay_file, action=None, limit=None, export=None, summary_only=False, **options):
        replay_data = self._load(replay_file)
        if export:
            chunks = dynoai_text.replay_timeline_chunks(replay_data, action=action)
            try:
                with open(export, "w", encoding="utf-8") as out:
                    out.writelines(dynoai_text.coalesce(chunks))
            except OSError as exc:
                self._fail(f"ERROR: Failed to write export file: {exc}")
            self._write(dynoai_text.exported_to(export))
        elif summary_only:
            self._write(dynoai_text.printed(dynoai_text.replay_summary(replay_data)))
        else:
            chunks = dynoai_text.replay_timeline_chunks(replay_data, action=action, limit=limit)
            self._write_all(chain(chunks, ["\n"]))  # print() adds the final newline

    def _load(self, replay_file):
        path = Path(replay_file)
        if not path.exists():
            self._fail(f"ERROR: Replay file not found: {replay_file}")
        try:
            with open(path, encoding="utf-8") as f:
                replay_data = json.load(f)
        except json.JSONDecodeError as exc:
            self._fail(f"ERROR: Invalid JSON in replay file: {exc}")
        except Exception as exc:  # the original reports any other failure the same way
            self._fail(f"ERROR: Failed to read replay file: {exc}")
        if not isinstance(replay_data, dict) or "decisions" not in replay_data:
            self._fail("ERROR: Invalid replay file format (missing 'decisions' key)")
        if not isinstance(replay_data["decisions"], (list, type(None))):
            self._fail("ERROR: Invalid replay file format ('decisions' is not a list)")
        return replay_data

    def _write(self, text):
        self.stdout.write(text, style_func=_plain, ending="")

    def _write_all(self, chunks):
        for piece in dynoai_text.coalesce(chunks):
            self._write(piece)

    def _fail(self, line):
        self.stderr.write(line, style_func=_plain)  # uncoloured even on a terminal, like print()
        raise SystemExit(1)
