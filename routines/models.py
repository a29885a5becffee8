"""Projects, their members, the stacks operators offer, and routines with immutable versions."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

SLUG_RE = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
slug_validator = RegexValidator(
    SLUG_RE, "Use 1-64 lower-case letters, digits and hyphens, starting and ending with a letter or digit."
)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MAINTAINER = "maintainer", "Maintainer"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.MAINTAINER: 2, Role.OWNER: 3}


class ProjectQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user or not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    personal_of = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="home_project",
        help_text="Set on a user's own area, where runs of hosted models keep their inputs and outputs.",
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]
        ordering = ["project", "user"]

    def __str__(self):
        return f"{self.user} in {self.project} ({self.role})"


class BaseStack(models.Model):
    """A named stack operators define: a base image and how a job folder is installed into it."""

    name = models.CharField(max_length=64, unique=True, help_text="Name users put in base_stack, e.g. PYTHON3_7.")
    image = models.CharField(max_length=300, help_text="Base image the job folder is installed into.")
    workdir = models.CharField(max_length=300, default="/code")
    install_command = models.TextField(
        blank=True,
        help_text="Shell run in the workdir at build time, e.g. installs requirements.txt. Empty: copy only.",
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def definition(self) -> dict:
        return {"name": self.name, "image": self.image, "workdir": self.workdir, "install": self.install_command}


class Routine(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="routines")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    latest_version = models.ForeignKey(
        "RoutineVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="routine_name_unique_in_project")]
        ordering = ["project", "name"]

    def __str__(self):
        return f"{self.project.slug}/{self.name}"


class RoutineVersion(models.Model):
    """An immutable snapshot of what a routine runs. `spec` is validated by routines.task_spec."""

    routine = models.ForeignKey(Routine, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()
    spec_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["routine", "number"], name="version_number_unique"),
            models.UniqueConstraint(fields=["routine", "spec_hash"], name="version_spec_unique"),
        ]
        ordering = ["routine", "-number"]

    def __str__(self):
        return f"{self.routine} v{self.number}"


class RoutineShare(models.Model):
    """A routine shared with a whole project: its members (now and later) may read it and copy it.

    Sharing with one person is a django-guardian object permission
    (routines.permissions); a project is not a guardian subject, so its
    shares are rows here.
    """

    routine = models.ForeignKey(Routine, on_delete=models.CASCADE, related_name="project_shares")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="shared_routines")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["routine", "project"], name="routine_shared_once_per_project")]
        ordering = ["routine", "project"]

    def __str__(self):
        return f"{self.routine} shared with {self.project}"


class DatasetTemplate(models.Model):
    """Rules a project's CSV files must follow, read by `accli validate <project> <template> file.csv`.

    `rules` holds the JSON the client validates each row with (checked by
    routines.dataset_templates.check_rules). The client reads a template
    without signing in, so only a `public` one can be used with it.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dataset_templates")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, validators=[slug_validator])
    description = models.TextField(blank=True)
    rules = models.JSONField(default=dict)
    public = models.BooleanField(
        default=False, help_text="Readable by anyone who knows its slugs, as `accli validate` needs (no sign-in)."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="dataset_template_slug_unique_in_project")
        ]
        ordering = ["project", "slug"]

    def __str__(self):
        return f"{self.project.slug}/{self.slug}"
