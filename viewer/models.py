"""Runs and their decisions.

A Run is one imported log file; a Decision is one normalized record of it (SPEC.md,
"Normalized decision"). Decisions are written only by ingest.run_ingest and read only
through selectors.
"""
import hashlib
import secrets

from django.conf import settings
from django.db import models


def kind_choices():
    """The registered log kinds (viewer/kinds), read when asked: a kind registered later shows too."""
    from .kinds import choices

    return choices()


class Run(models.Model):
    class Kind(models.TextChoices):
        DYNOAI = "dynoai", "DynoAI session replay"
        SESSION = "session", "Multi-agent session"
        STUDY = "study", "Learning Observer study log"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=kind_choices)
    source_name = models.CharField(max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)

    # Header fields; each format fills the ones it has.
    run_id = models.CharField(max_length=500, blank=True)
    schema_version = models.CharField(max_length=100, blank=True)
    generated_at = models.CharField(max_length=100, blank=True)
    session_id = models.CharField(max_length=500, blank=True)
    random_seed = models.BigIntegerField(null=True, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    version = models.CharField(max_length=100, blank=True)
    git_commit = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=500, blank=True)
    # Agent id -> display name, as the log pairs them (a session's characters): pages show
    # "player_02 · Ash Vex" and the agent filter takes either spelling.
    agents = models.JSONField(default=dict, blank=True)
    user_label = models.CharField(max_length=500, blank=True)
    declared_total = models.IntegerField(null=True, blank=True)
    decision_count = models.IntegerField(default=0)
    first_ts = models.DateTimeField(null=True, blank=True)
    last_ts = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    # DynoAI manifest: its status block and the size/sha256 check against this file.
    manifest = models.JSONField(null=True, blank=True)

    class Status(models.TextChoices):
        READY = "ready"
        FAILED = "failed"  # the tool that wrote it failed (a DynoAI manifest with status error): no decisions
        # Being imported: its decisions are stored a slice at a time; no page lists it until it is
        # ready, and a failed, cancelled or abandoned import deletes it (viewer/jobs.py).
        IMPORTING = "importing"
        # A log still being written (import_logs --follow): shown, and growing, until it ends.
        LIVE = "live"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.READY)
    live_seen = models.DateTimeField(null=True, blank=True)  # LIVE: the follower's last sign of life
    # What failed, for a failed run: {"stage", "message", "code"} as the manifest says it.
    failure = models.JSONField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    keep_user_ids = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["owner", "sha256"], name="run_owner_sha256")]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    def output_files(self):
        """Its output files in the manifest's order, without their bytes (the run page lists them)."""
        return self.outputs.defer("data", "grid").order_by("position", "name", "id")


class RunTag(models.Model):
    """A tag on a run (the runs list's `tag` filter, its bulk tag action): a short word the owner picks."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="runtag_run_name")]
        indexes = [models.Index(fields=["name", "run"], name="runtag_name_run")]

    def __str__(self):
        return self.name


class Note(models.Model):
    """What a person says of a run: a note (markdown, shown sanitized) and labels ("suspect", "ok",
    "regression") on one decision (`seq`), one cell (`cell`, the cell's key as its kind's cells page
    names it) or the whole run (neither). Written by viewer/notes.py, by the owner or a user the run is
    shared with for annotation; every face of the run shows it."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="notes")
    seq = models.IntegerField(null=True, blank=True)
    cell = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    labels = models.JSONField(default=list, blank=True)  # short words, lower case, each once
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="notes")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "seq", "created", "id"]
        indexes = [models.Index(fields=["run", "seq"], name="note_run_seq")]

    def __str__(self):
        where = f"#{self.seq}" if self.seq is not None else f"cell {self.cell}" if self.cell else "the run"
        return f"note on {where}"


class RunShare(models.Model):
    """A run shared read-only with a user or a group; `can_annotate` lets them add notes too. Only the
    owner renames, tags, deletes or shares it (viewer/access.py decides, for every face)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="run_shares"
    )
    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, null=True, blank=True, related_name="run_shares")
    can_annotate = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="runshare_user_or_group",
            ),
            models.UniqueConstraint(fields=["run", "user"], condition=models.Q(user__isnull=False), name="runshare_run_user"),
            models.UniqueConstraint(
                fields=["run", "group"], condition=models.Q(group__isnull=False), name="runshare_run_group"
            ),
        ]


class ShareLink(models.Model):
    """A public read-only link to a run page or its audit trail, for someone without an account. The
    link carries a signature of this row's id (django.core.signing), so it cannot be guessed; the row
    says whether it still holds: until `expires`, unless `revoked`."""

    class Scope(models.TextChoices):
        RUN = "run", "run page"
        AUDIT = "audit", "audit trail"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="links")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.RUN)
    expires = models.DateTimeField()
    revoked = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]


class SavedView(models.Model):
    """A page's filters under a name: a run page (or its diff, or a compare) as its URL says it. Its
    URL is the page's own; listed on its run for whoever may see the run."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=200)
    path = models.CharField(max_length=500)  # /runs/5/, /diff/, /compare/
    query = models.TextField(blank=True)  # the page's query string, as it was
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "name", "id"]

    @property
    def url(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


class RunAggregate(models.Model):
    """A result computed over a whole run (summary, facet counts, chart bins, a heatmap grid), kept
    in the database so every process and every worker shares it: a run never changes once imported,
    so it stays true. Written by viewer/memo.py; the import job computes the first view's ahead."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="aggregates")
    key = models.CharField(max_length=64)  # sha256 of what and its parameters
    what = models.CharField(max_length=200)
    value = models.BinaryField()  # pickled: only the app writes it, from its own computations
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="runaggregate_run_key")]


class ImportJob(models.Model):
    """One upload (or one import_logs group) imported in the background by a worker (viewer/jobs.py).

    The files wait in storage until a worker reads them; the row says how far it has got, and a
    web page or the API reads that. A job ends done, failed or cancelled; only done leaves runs."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    name = models.CharField(max_length=500)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=20, blank=True)  # checking, parsing, indexing, aggregating
    # [{"name", "key" (its name in storage), "size"}], in upload order.
    files = models.JSONField(default=list)
    options = models.JSONField(default=dict)  # {"keep_user_ids", "skip_unrecognised", "group"}
    current = models.CharField(max_length=500, blank=True)  # the file being read
    bytes_read = models.BigIntegerField(default=0)
    total_bytes = models.BigIntegerField(default=0)
    decisions = models.BigIntegerField(default=0)
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    run_ids = models.JSONField(default=list)  # every run this job created: deleted if it does not end done
    results = models.JSONField(default=list)  # one line per file when done, as the upload page shows them
    message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=100, blank=True)  # the task backend's id for it
    worker = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)  # the worker's last sign of life
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "status"], name="importjob_owner_status")]

    def __str__(self):
        return f"{self.name} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class Decision(models.Model):
    # No index of its own: the unique (run, seq) index serves every lookup by run.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="decisions", db_index=False)
    seq = models.IntegerField()
    line = models.IntegerField(null=True)
    ts = models.DateTimeField(null=True)
    t_ms = models.FloatField(null=True)
    action = models.CharField(max_length=500)
    reason = models.TextField(blank=True)
    values = models.JSONField(default=dict)
    cell = models.JSONField(null=True)
    rpm = models.IntegerField(null=True)
    kpa = models.IntegerField(null=True)
    cylinder = models.CharField(max_length=500, null=True)
    rpm_index = models.IntegerField(null=True)
    kpa_index = models.IntegerField(null=True)
    round = models.IntegerField(null=True)
    agent = models.CharField(max_length=500, null=True)
    # The decision's headline number (AFR error, gradient result, anomaly score, LLM tokens,
    # roll margin), kept in a column so heatmaps aggregate it without parsing JSON.
    metric = models.FloatField(null=True)
    # Extra searchable text (an LLM call's prompt and response), for the `q` filter.
    text = models.TextField(blank=True)
    # Exactly what was read: the decision's JSON text, or the line's text.
    raw = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="decision_run_seq")]
        indexes = [
            models.Index(fields=["run", "action"], name="decision_run_action"),
            models.Index(fields=["run", "ts"], name="decision_run_ts"),
            models.Index(fields=["run", "rpm", "kpa"], name="decision_run_cell"),
            models.Index(fields=["run", "round", "agent"], name="decision_run_round_agent"),
        ]
        ordering = ["run", "seq"]


class RunOutput(models.Model):
    """A file the tool wrote beside the log (a DynoAI output folder: grid CSVs, reports), kept with
    its run and verified against the manifest that lists it. `data` is the file unchanged; a file
    the manifest lists but no one uploaded is a row with no data (status missing)."""

    class Status(models.TextChoices):
        MATCHED = "matched"
        DIFFERS = "differs"
        MISSING = "missing"
        UNLISTED = "unlisted"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outputs")
    name = models.CharField(max_length=500)
    position = models.IntegerField(default=0)  # the manifest's order; unlisted files after it
    schema = models.CharField(max_length=200, blank=True)  # the manifest's `schema` (ve_delta_grid...)
    data = models.BinaryField(null=True)
    size = models.BigIntegerField(null=True)
    sha256 = models.CharField(max_length=64, blank=True)
    newlines = models.IntegerField(null=True)
    crlf_sha256 = models.CharField(max_length=64, blank=True)  # as if every bare LF were CRLF
    expected_size = models.BigIntegerField(null=True)
    expected_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    why = models.TextField(blank=True)
    # A grid CSV parsed: {"rpm": [...], "kpa": [...], "values": [[float | None, ...], ...]}.
    grid = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position", "name", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="runoutput_run_name")]

    def __str__(self):
        return f"{self.name} ({self.status})"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the API. Only its hash is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    @classmethod
    def issue(cls, user, name=""):
        token = "rw_" + secrets.token_urlsafe(32)
        obj = cls.objects.create(user=user, name=name, prefix=token[:10], token_hash=hash_token(token))
        return obj, token


class ReplayIndex(models.Model):
    """The replay of one run through one set of filters (viewer/replay.py): its length, scrubber
    markers and checkpoints, built once by one pass so that a jump to any step folds at most
    `every` decisions. Runs never change after import, so an index never goes stale."""

    class Status(models.TextChoices):
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="replay_indexes")
    key = models.CharField(max_length=64)  # sha256 of the filters and the reducer version
    every = models.IntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BUILDING)
    built_steps = models.IntegerField(default=0)  # progress while building
    total = models.IntegerField(null=True)
    t_first = models.FloatField(null=True)
    t_last = models.FloatField(null=True)
    markers = models.JSONField(default=list)  # [[step, category, count], ...]
    error = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="replayindex_run_key")]


class ReplayCheckpoint(models.Model):
    """The replay state after `step` decisions; `seq` is the cursor to load the next ones after."""

    index = models.ForeignKey(ReplayIndex, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.IntegerField()
    seq = models.IntegerField(null=True)
    t_ms = models.FloatField(null=True)
    state = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["index", "step"], name="replaycheckpoint_index_step")]
        indexes = [models.Index(fields=["index", "t_ms"], name="replaycheckpoint_index_t")]
