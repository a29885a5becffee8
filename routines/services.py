"""Projects, members, routines and their versions."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max

from accelerator.errors import Conflict, Forbidden, InvalidInput, NotFound
from files import code as code_source
from files import jobstore
from files import mappings as mapping_syntax
from files import services as file_services
from routines import permissions
from routines.limits import task_limits
from routines.models import (
    BaseStack,
    Membership,
    Project,
    Role,
    Routine,
    RoutineShare,
    RoutineVersion,
    slug_validator,
)
from routines.task_spec import SpecError, canonical_hash, normalize_task

# --- projects and members ----------------------------------------------------
RESERVED_SLUGS = {"new"}  # /projects/new/ is the page that creates a project


def create_project(*, user, slug: str, name: str, description: str = "") -> Project:
    try:
        slug_validator(slug)
    except Exception:
        raise InvalidInput(f"slug {slug!r} is not valid: {slug_validator.message}") from None
    if slug in RESERVED_SLUGS:
        raise InvalidInput(f"slug {slug!r} is reserved by the web client; choose another slug.")
    try:
        with transaction.atomic():
            project = Project.objects.create(slug=slug, name=name or slug, description=description)
            Membership.objects.create(project=project, user=user, role=Role.OWNER)
    except IntegrityError:
        raise Conflict(f"A project with slug '{slug}' already exists; choose another slug.") from None
    return project


def set_member(*, project: Project, actor, username: str, role: str) -> Membership:
    """Add `username` to the project or change their role. Needs maintainer; granting owner needs owner."""
    if role not in Role.values:
        raise InvalidInput(f"role must be one of {', '.join(Role.values)}, got {role!r}.")
    if not permissions.has_role(actor, project, Role.MAINTAINER):
        raise Forbidden("Only owners and maintainers can manage members.")
    if role == Role.OWNER and not permissions.has_role(actor, project, Role.OWNER):
        raise Forbidden("Only an owner can make someone an owner.")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No active user named '{username}'.")
    with transaction.atomic():
        existing = Membership.objects.select_for_update().filter(project=project, user=user).first()
        if existing and existing.role == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(project, leaving=user)
            if not permissions.has_role(actor, project, Role.OWNER):
                raise Forbidden("Only an owner can change another owner's role.")
        membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


def remove_member(*, project: Project, actor, username: str) -> None:
    membership = Membership.objects.filter(project=project, user__username=username).select_related("user").first()
    if membership is None:
        raise NotFound(f"'{username}' is not a member of this project.")
    if membership.user_id != actor.id and not permissions.has_role(actor, project, Role.MAINTAINER):
        raise Forbidden("Only owners and maintainers can remove other members.")
    if (
        membership.role == Role.OWNER
        and membership.user_id != actor.id
        and not permissions.has_role(actor, project, Role.OWNER)
    ):
        raise Forbidden("Only an owner can remove an owner.")
    with transaction.atomic():
        if membership.role == Role.OWNER:
            _keep_an_owner(project, leaving=membership.user)
        membership.delete()


def _keep_an_owner(project: Project, *, leaving) -> None:
    if not Membership.objects.filter(project=project, role=Role.OWNER).exclude(user=leaving).exists():
        raise InvalidInput("A project needs at least one owner: make someone else owner first.")


# --- routines and versions -----------------------------------------------------
def resolve_stack(stack: dict) -> dict:
    """Snapshot a base stack's definition into the spec, so a version never changes under a job."""
    if stack["kind"] != "base_stack":
        return stack
    row = BaseStack.objects.filter(name=stack["name"], enabled=True).first()
    if row is None:
        known = ", ".join(BaseStack.objects.filter(enabled=True).values_list("name", flat=True)) or "none defined"
        raise InvalidInput(f"Unknown base_stack '{stack['name']}'. Known stacks: {known}.", code="unknown_stack")
    return {"kind": "base_stack", **row.definition()}


def validate_spec(*, project: Project, spec: dict) -> dict:
    spec = {**spec, "stack": resolve_stack(spec["stack"])}
    code = spec["code"]
    if code["kind"] != "none":
        code_source.validate_code_source(project=project, repo_url=code["url"], repo_branch=code.get("ref") or "")
    validate_mappings(project=project, conf=spec.get("conf") or {})
    validate_socket(conf=spec.get("conf") or {})
    return spec


def validate_socket(*, conf: dict) -> None:
    """An interactive routine's `interactive_socket` must name a socket the platform can reach."""
    from backends.sockets import CONF_KEY, parse_socket

    if conf.get(CONF_KEY):
        try:
            parse_socket(conf[CONF_KEY])
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None


def validate_mappings(*, project: Project, conf: dict) -> None:
    try:
        inputs = mapping_syntax.parse_input_mappings(conf.get("input_mappings", "") or "")
        outputs = mapping_syntax.parse_output_mappings(conf.get("output_mappings", "") or "")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    for url in [p.source for p in inputs] + [p.destination for p in outputs]:
        file_services.resolve_acc_url(url, project=project)


def record_version(*, routine: Routine, spec: dict, user) -> RoutineVersion:
    """The version holding exactly `spec`: an existing one, or a new immutable one."""
    spec_hash = canonical_hash(spec)
    version = RoutineVersion.objects.filter(routine=routine, spec_hash=spec_hash).first()
    if version is None and transaction.get_connection().in_atomic_block:
        # new versions of one routine are numbered one writer at a time (the lock ends with the transaction)
        Routine.objects.select_for_update().filter(pk=routine.pk).first()
        version = RoutineVersion.objects.filter(routine=routine, spec_hash=spec_hash).first()
    for _attempt in range(3):
        if version is not None:
            break
        number = (RoutineVersion.objects.filter(routine=routine).aggregate(m=Max("number"))["m"] or 0) + 1
        try:
            with transaction.atomic():  # a savepoint: a concurrent writer may take the number first
                version = RoutineVersion.objects.create(
                    routine=routine, number=number, spec=spec, spec_hash=spec_hash, created_by=user
                )
        except IntegrityError:
            version = RoutineVersion.objects.filter(routine=routine, spec_hash=spec_hash).first()
    if version is None:
        raise Conflict("The routine is being changed by someone else right now; try again.")
    version.routine = routine
    if routine.latest_version_id != version.pk:
        Routine.objects.filter(pk=routine.pk).update(latest_version=version)
        routine.latest_version = version
    return version


def get_or_create_routine(*, project: Project, name: str, user) -> Routine:
    routine = Routine.objects.filter(project=project, name=name).first()
    if routine is None:
        try:
            with transaction.atomic():
                routine = Routine.objects.create(project=project, name=name, created_by=user)
        except IntegrityError:  # created concurrently
            routine = Routine.objects.get(project=project, name=name)
    routine.project = project
    return routine


def save_routine(*, project: Project, user, task: dict, description: str = "", routine: Routine | None = None):
    """Create a routine or edit one; either way record the version its fields describe."""
    if not permissions.has_role(user, project, Role.MEMBER):
        raise Forbidden(f"Creating or editing routines needs the member role in project '{project.slug}'.")
    try:
        normalized = normalize_task(task, limits=task_limits())
    except SpecError as exc:
        raise InvalidInput(str(exc)) from None
    with transaction.atomic():
        spec = validate_spec(project=project, spec=normalized["spec"])
        if routine is None:
            if Routine.objects.filter(project=project, name=normalized["name"]).exists():
                raise Conflict(f"A routine named '{normalized['name']}' already exists in '{project.slug}'.")
            routine = Routine.objects.create(
                project=project, name=normalized["name"], created_by=user, description=description
            )
        else:
            if (
                normalized["name"] != routine.name
                and Routine.objects.filter(project=project, name=normalized["name"]).exists()
            ):
                raise Conflict(f"A routine named '{normalized['name']}' already exists in '{project.slug}'.")
            Routine.objects.filter(pk=routine.pk).update(name=normalized["name"], description=description)
            routine.refresh_from_db()
        record_version(routine=routine, spec=spec, user=user)
    return routine


# --- sharing routines ----------------------------------------------------------------
def _may_share(actor, routine: Routine) -> None:
    if not permissions.has_role(actor, routine.project, Role.MAINTAINER):
        raise Forbidden("Only owners and maintainers of the routine's project can share it.")


def share_routine(*, routine: Routine, actor, username: str):
    """Let `username` read the routine and copy it into a project of theirs (a guardian object permission)."""
    _may_share(actor, routine)
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"No active user named '{username}'.")
    if permissions.role_of(user, routine.project) is not None:
        raise InvalidInput(f"'{username}' is a member of project '{routine.project.slug}' and reads it already.")
    permissions.grant_routine_read(user, routine)
    return user


def unshare_routine(*, routine: Routine, actor, username: str) -> None:
    _may_share(actor, routine)
    user = get_user_model().objects.filter(username=username).first()
    if user is None or user not in permissions.routine_grantees(routine):
        raise NotFound(f"The routine is not shared with '{username}'.")
    permissions.revoke_routine_read(user, routine)


def share_routine_with_project(*, routine: Routine, actor, slug: str) -> Project:
    """Let every member of project `slug` (now and later) read the routine and copy it into their projects."""
    _may_share(actor, routine)
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise NotFound(f"No project with slug '{slug}'.")
    if project.pk == routine.project_id:
        raise InvalidInput(f"The routine is in project '{slug}' already.")
    RoutineShare.objects.get_or_create(routine=routine, project=project, defaults={"created_by": actor})
    return project


def unshare_routine_from_project(*, routine: Routine, actor, slug: str) -> None:
    _may_share(actor, routine)
    deleted, _ = RoutineShare.objects.filter(routine=routine, project__slug=slug).delete()
    if not deleted:
        raise NotFound(f"The routine is not shared with project '{slug}'.")


def copy_routine(*, routine: Routine, user, project: Project, name: str = "") -> Routine:
    """A new routine in `project` running exactly the latest version of `routine` (its code copied along).

    This is how a routine shared with someone outside its project runs for
    them: in a project of their own, on a version they hold, so the author's
    later edits never change what they run without them knowing.
    """
    if not permissions.can_read_routine(user, routine) or routine.latest_version_id is None:
        raise NotFound("Routine not found, or you have no access to it.")
    if not permissions.has_role(user, project, Role.MEMBER):
        raise Forbidden(f"Copying a routine into '{project.slug}' needs the member role there.")
    name = (name or routine.name).strip()
    spec = routine.latest_version.spec
    with transaction.atomic():
        if Routine.objects.filter(project=project, name=name).exists():
            raise Conflict(f"A routine named '{name}' already exists in '{project.slug}'; choose another name.")
        code = spec.get("code") or {}
        if code.get("kind") == "jobstore" and project.pk != routine.project_id:
            filename = code["url"][len(code_source.JOBSTORE_SCHEME) :]
            jobstore.copy_code(source=routine.project, target=project, filename=filename)
        copy = Routine.objects.create(project=project, name=name, created_by=user, description=routine.description)
        record_version(routine=copy, spec=spec, user=user)
    return copy
