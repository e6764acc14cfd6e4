from django.urls import path

from .views import cells, exports, jobs, replay, runs, session, state, timeline, tokens, trace, tuning
from .views import diff as diff_views
from .views import notes as note_views
from .views import saved_views, share

urlpatterns = [
    path("", runs.run_list, name="runs"),
    # The diff's exports first: nothing below may take "diff/export.csv" for a page.
    path("diff/export.<str:fmt>", diff_views.diff_export, name="diff-export"),
    path("diff/", diff_views.diff_page, name="diff"),
    path("compare/", tuning.compare_page, name="compare"),
    path("upload/", runs.upload, name="upload"),
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/<int:job_id>/cancel/", jobs.cancel, name="job-cancel"),
    path("runs/bulk/", runs.bulk, name="runs-bulk"),
    path("runs/<int:run_id>/", timeline.run_page, name="run"),
    path("runs/<int:run_id>/decisions/<int:seq>/", timeline.decision_detail, name="decision"),
    path("runs/<int:run_id>/delete/", runs.delete, name="run-delete"),
    path("runs/<int:run_id>/rename/", runs.rename, name="run-rename"),
    path("runs/<int:run_id>/outputs/<str:name>", runs.output, name="run-output"),
    path("runs/<int:run_id>/export.otlp.jsonl", exports.run_export, {"fmt": "otlp"}, name="run-export-otlp"),
    path("runs/<int:run_id>/export.<str:fmt>", exports.run_export, name="run-export"),
    path("runs/<int:run_id>/cells/", cells.run_cells, name="run-cells"),
    path("runs/<int:run_id>/cells/story/", tuning.story, name="run-cell-story"),
    path("runs/<int:run_id>/tables/", tuning.tables, name="run-tables"),
    path("runs/<int:run_id>/replay/", replay.replay, name="run-replay"),
    path("runs/<int:run_id>/replay/frames/", replay.frames, name="run-replay-frames"),
    path("runs/<int:run_id>/replay/document.txt", replay.document_text, name="run-replay-document"),
    path("runs/<int:run_id>/replay/writing.csv", replay.writing_csv, name="run-replay-writing"),
    path("runs/<int:run_id>/llm/", session.llm_panel, name="run-llm"),
    path("runs/<int:run_id>/state/", state.state_page, name="run-state"),
    path("runs/<int:run_id>/replay-kit.json", session.replay_kit_json, name="run-replay-kit"),
    path("runs/<int:run_id>/trace/", trace.trace_page, name="run-trace"),
    path("runs/<int:run_id>/share/", share.share_page, name="run-share"),
    path("runs/<int:run_id>/share/remove/", share.unshare, name="run-unshare"),
    path("runs/<int:run_id>/share/links/", share.create_link, name="run-link-create"),
    path("runs/<int:run_id>/share/links/<int:link_id>/revoke/", share.revoke_link, name="run-link-revoke"),
    path("runs/<int:run_id>/views/", saved_views.save_view, name="run-view-save"),
    path("runs/<int:run_id>/views/<int:view_id>/delete/", saved_views.delete_view, name="run-view-delete"),
    path("s/<str:token>/", share.open_link, name="share-link"),
    path("runs/<int:run_id>/notes/", note_views.run_notes, name="run-notes"),
    path("notes/<int:note_id>/edit/", note_views.edit_note, name="note-edit"),
    path("notes/<int:note_id>/delete/", note_views.delete_note, name="note-delete"),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.revoke, name="token-revoke"),
]
