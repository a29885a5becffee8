"""Jobs, their state history, their log and their stored outputs."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

from jobs.states import FINAL, Status


class JobQuerySet(models.QuerySet):
    def live(self):
        return self.exclude(status__in=FINAL)


class Job(models.Model):
    project = models.ForeignKey("routines.Project", on_delete=models.CASCADE, related_name="jobs")
    # null only for a jobflow's root, which runs nothing
    routine_version = models.ForeignKey(
        "routines.RoutineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    flow_run = models.ForeignKey(
        "jobflows.JobflowRun", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    node_key = models.CharField(max_length=64, blank=True, help_text="The node id in its jobflow's DAG.")
    attempt = models.PositiveSmallIntegerField(default=1)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    name = models.CharField(max_length=200)

    # progress
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # outcome, kept apart from progress
    exit_code = models.IntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=32, blank=True, help_text="timeout, oom, exit, build, input, ...")
    message = models.TextField(blank=True, help_text="What went wrong, for the user.")
    operator_message = models.TextField(blank=True, help_text="Details for operators (never shown to users).")

    # what to run (the routine version holds the rest)
    conf = models.JSONField(default=dict, blank=True)
    secrets_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    force_build = models.BooleanField(default=False)
    required_cores = models.FloatField(default=1.0)
    required_ram = models.BigIntegerField(default=512 * 1024**2)
    required_storage_local = models.BigIntegerField(default=2 * 1024**3)
    required_storage_workflow = models.BigIntegerField(default=1024**3)
    timeout = models.PositiveIntegerField(default=3600)

    # the fair queue (jobs.scheduler): a QUEUED job waits there until admitted, then its start task is sent
    priority = models.SmallIntegerField(
        default=0, help_text="Higher starts first; within one priority projects (then users) take turns."
    )
    admitted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the scheduler sent its start task; empty while it waits in the queue."
    )
    start_after = models.DateTimeField(
        null=True, blank=True, help_text="Not admitted before this time (a retry's backoff)."
    )
    wait_reason = models.CharField(
        max_length=300, blank=True, help_text="Why it still waits, e.g. for its project's quota; cleared on admission."
    )

    # where it ran
    backend = models.CharField(max_length=32, blank=True)
    backend_state = models.JSONField(default=dict, blank=True)
    image = models.CharField(max_length=300, blank=True, help_text="Image (id) the command ran in.")
    code_commit = models.CharField(max_length=64, blank=True, help_text="Git commit the code came from.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)
    cpu_seconds = models.FloatField(null=True, blank=True, help_text="CPU time the job's processes used.")
    usage = models.JSONField(
        # the text names where the sampler began (now backends.usage): changing it would only add a migration
        null=True,
        blank=True,
        help_text="CPU and memory sampled while it ran (workers.usage), for the chart.",
    )

    # timestamps of every phase
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    building_at = models.DateTimeField(null=True, blank=True)
    mapping_inputs_at = models.DateTimeField(null=True, blank=True)
    running_at = models.DateTimeField(null=True, blank=True)
    mapping_outputs_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    log_bytes = models.BigIntegerField(default=0)
    log_cursor = models.CharField(
        max_length=100, blank=True, help_text="Where the supervisor's log stream resumes (engine timestamp or offset)."
    )

    # the build-system cache (builds.cache)
    cache_key = models.CharField(max_length=64, blank=True, db_index=True, help_text="Hash of `identity`.")
    identity = models.JSONField(null=True, blank=True, help_text="Everything that determines the result.")
    reused_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reused_by",
        help_text="The job whose result this one returned (or, while PENDING, the identical job it waits for).",
    )
    cache_note = models.CharField(max_length=500, blank=True, help_text="Why the cache did or did not apply.")

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["project", "-id"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["cache_key", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["flow_run", "node_key", "attempt"],
                condition=models.Q(flow_run__isnull=False),
                name="one_job_per_node_attempt",
            )
        ]

    def __str__(self):
        return f"#{self.pk} {self.name} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


class JobEvent(models.Model):
    """One row per status transition."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]


class LogChunk(models.Model):
    """An ordered piece of a job's log: whole lines, secrets masked, NULs stripped."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_chunks")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="log_seq_unique")]


class JobOutput(models.Model):
    """A file a job stored into project storage through an output mapping."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="outputs")
    path = models.CharField(max_length=1024, help_text="Path inside the project storage.")
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["job", "path"]
        constraints = [models.UniqueConstraint(fields=["job", "path"], name="output_path_unique")]


class InteractiveSession(models.Model):
    """The live server of an interactive job (conf `interactive_socket`) and the URL that reaches it.

    Created by the worker just before the job starts. `token` is the
    unguessable id in the URL; `address` (where the proxy connects) is set
    once the server accepts connections, and `ends_at` is the deadline:
    start + timeout + extensions. `ended_at` is set as soon as the server
    has stopped, so the URL says the session is over from then on.
    """

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="interactive")
    token = models.CharField(max_length=64, unique=True, editable=False)
    socket = models.CharField(max_length=300, help_text="The conf's interactive_socket, as given.")
    address = models.CharField(max_length=500, blank=True, help_text="tcp://host:port or unix:///path (operators).")
    strip_prefix = models.BooleanField(default=True, help_text="Forward paths without /interactive/<token>.")
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    extended_seconds = models.PositiveIntegerField(default=0)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"session of job #{self.job_id}"

    @property
    def path(self) -> str:
        return f"/interactive/{self.token}/"


class Quota(models.Model):
    """What one project's jobs may use at once (jobs.scheduler); without a project: the default for the others.

    A job counts from the moment its start task is sent until it leaves
    MAPPING_OUTPUTS. An empty limit is no limit.
    """

    project = models.OneToOneField(
        "routines.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quota",
        help_text="Empty: the default quota of every project that has none of its own (at most one).",
    )
    max_running_jobs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Jobs started and not yet ended at once. Empty: no limit; 0: none may run."
    )
    max_cores = models.FloatField(
        null=True, blank=True, help_text="Sum of the cores its started jobs ask for. Empty: no limit."
    )
    max_ram = models.BigIntegerField(
        null=True, blank=True, help_text="Sum of the RAM its started jobs ask for, in bytes. Empty: no limit."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project__slug"]
        constraints = [
            # the OneToOne keeps one per project; this keeps one default (NULL project) as well
            models.UniqueConstraint(
                Coalesce("project", models.Value(0)),
                name="one_quota_per_project_and_one_default",
                violation_error_message="There is already a quota for this project (or already a default quota).",
            )
        ]

    def __str__(self):
        return f"quota of {self.project.slug}" if self.project_id else "default quota"
