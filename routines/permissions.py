"""Who may see and do what. Views, serializers and consumers start here.

Project roles (Membership) grant access to everything inside a project;
django-guardian object permissions add sharing of single routines with
people outside it. Only this module talks to guardian.
"""

from django.db.models import OuterRef, Subquery
from guardian.shortcuts import get_objects_for_user

from accelerator.errors import Forbidden, NotFound
from routines.models import ROLE_RANK, Membership, Project, Role, Routine, RoutineShare

READ, RUN, WRITE, ADMIN = Role.VIEWER, Role.MEMBER, Role.MAINTAINER, Role.OWNER


def _role_cache(user) -> dict:
    cache = getattr(user, "_acc_roles", None)
    if cache is None:
        cache = user._acc_roles = {}
    return cache


def role_of(user, project: Project) -> str | None:
    if not user or not user.is_authenticated:
        return None
    cache = _role_cache(user)
    if project.pk not in cache:
        cache[project.pk] = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    return cache[project.pk]


def has_role(user, project: Project, needed: str) -> bool:
    role = role_of(user, project)
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


def visible_projects(user):
    return Project.objects.for_user(user)


def get_project(user, slug: str, needed: str = READ) -> Project:
    """The project `slug` if `user` holds at least `needed` in it.

    A project the user does not belong to is reported exactly like one that
    does not exist, so slugs of other people's projects are not revealed.
    """
    project = None
    if user and user.is_authenticated:
        role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
        project = Project.objects.filter(slug=slug).annotate(my_role=Subquery(role)).first()
    if project is not None:  # one query for both; remember the role for the checks that follow
        _role_cache(user)[project.pk] = project.my_role
    if project is None or role_of(user, project) is None:
        raise NotFound(f"Project '{slug}' was not found, or you are not a member of it.")
    if not has_role(user, project, needed):
        raise Forbidden(
            f"Your role in project '{slug}' is '{role_of(user, project)}'; this needs '{needed}' or higher."
        )
    return project


def visible_routines(user):
    if not user or not user.is_authenticated:
        return Routine.objects.none()
    shared = get_objects_for_user(user, "routines.view_routine", klass=Routine, accept_global_perms=False)
    with_my_projects = Routine.objects.filter(pk__in=_shared_with_my_projects(user))
    return Routine.objects.filter(project__memberships__user=user) | shared | with_my_projects


def _shared_with_my_projects(user):
    """Ids of the routines shared with a project `user` belongs to (any role)."""
    return RoutineShare.objects.filter(project__memberships__user=user).values("routine_id")


def can_read_routine(user, routine: Routine) -> bool:
    if has_role(user, routine.project, READ) or user.has_perm("routines.view_routine", routine):
        return True
    return bool(user and user.is_authenticated) and _shared_with_my_projects(user).filter(routine=routine).exists()


def readable_routine(user, pk) -> Routine:
    """Routine `pk` if `user` may read it; one they may not read is reported exactly like one that does not exist."""
    routine = Routine.objects.select_related("project", "latest_version").filter(pk=pk).first()
    if routine is None or not can_read_routine(user, routine):
        raise NotFound("Routine not found, or you have no access to it.")
    return routine


def can_run_routine(user, routine: Routine) -> bool:
    return has_role(user, routine.project, RUN)


def can_write_files(user, project: Project) -> bool:
    return has_role(user, project, RUN)


# --- sharing single routines with people outside their project (guardian) -------------------------------
def grant_routine_read(user, routine: Routine) -> None:
    from guardian.shortcuts import assign_perm

    assign_perm("routines.view_routine", user, routine)


def revoke_routine_read(user, routine: Routine) -> None:
    from guardian.shortcuts import remove_perm

    remove_perm("routines.view_routine", user, routine)


def routine_grantees(routine: Routine) -> list:
    """The users a routine was shared with (not its project's members, who read it by their role)."""
    from guardian.shortcuts import get_users_with_perms

    users = get_users_with_perms(routine, only_with_perms_in=["view_routine"], with_group_users=False)
    return sorted(users, key=lambda u: u.username)


def routines_shared_with(user):
    """Routines shared with `user` one by one, outside the projects they belong to."""
    if not user or not user.is_authenticated:
        return Routine.objects.none()
    shared = get_objects_for_user(user, "routines.view_routine", klass=Routine, accept_global_perms=False)
    with_my_projects = Routine.objects.filter(pk__in=_shared_with_my_projects(user))
    mine = Membership.objects.filter(user=user).values("project_id")
    return (shared | with_my_projects).exclude(project_id__in=mine)


def routines_shared_with_project(project: Project):
    """Routines of other projects shared with `project` as a whole (for its pages and the jobflow builder)."""
    return Routine.objects.filter(project_shares__project=project).exclude(project=project)


def projects_shared_with(routine: Routine) -> list[Project]:
    return list(Project.objects.filter(shared_routines__routine=routine).order_by("slug"))
