"""Authoring pages: new project, members, the routine editor, versions and their diff, sharing.

Thin like web.views: authorise (routines.permissions), parse the form
(web.authoring_forms), call one service (routines.services), render; a
service's message shows next to the field it is about, with status 400,
and nothing is saved.
"""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accelerator.errors import DomainError, Forbidden, NotFound
from files import jobstore
from routines import diff as spec_diff
from routines import permissions, services
from routines.models import BaseStack, Membership, Role, Routine, RoutineVersion
from web import authoring_forms as forms
from web import pages
from web.views import page


# --- projects ---------------------------------------------------------------------------------
@page
@require_http_methods(["GET", "POST"])
def project_new(request):
    data, errors = {}, {}
    if request.method == "POST":
        data, errors = forms.parse_project(request.POST)
        if not errors:
            try:
                project = services.create_project(
                    user=request.user, slug=data["slug"], name=data["name"], description=data["description"]
                )
            except DomainError as exc:
                errors = {"slug": [exc.detail]}
            else:
                return redirect("web-project", slug=project.slug)
    return render(request, "web/project_new.html", {"data": data, "errors": errors}, status=400 if errors else 200)


@page
@require_http_methods(["GET", "POST"])
def members(request, slug: str):
    project = permissions.get_project(request.user, slug)
    can_manage = permissions.has_role(request.user, project, Role.MAINTAINER)
    data, errors = {}, {}
    if request.method == "POST":
        if not can_manage:
            raise Forbidden("Only owners and maintainers can manage members.")
        data, errors = forms.parse_member(request.POST)
        if not errors:
            try:
                _member_action(request.user, project, data)
            except Forbidden:
                raise
            except DomainError as exc:
                errors = {_member_error_field(data): [exc.detail]}
            else:
                return redirect("web-members", slug=project.slug)
    context = {
        "project": project,
        "members": list(Membership.objects.filter(project=project).select_related("user").order_by("user__username")),
        "roles": Role.choices,
        "can_manage": can_manage,
        "is_owner": permissions.has_role(request.user, project, Role.OWNER),
        "data": data,
        "errors": errors,
    }
    return render(request, "web/members.html", context, status=400 if errors else 200)


def _member_action(actor, project, data: dict) -> None:
    if data["action"] == "remove":
        services.remove_member(project=project, actor=actor, username=data["username"])
    else:
        services.set_member(project=project, actor=actor, username=data["username"], role=data["role"])


def _member_error_field(data: dict) -> str:
    """Adding shows its error at the add form; a row's change or removal at that row."""
    return "username" if data.get("action") == "add" else f"member:{data.get('username', '')}"


# --- the routine editor -------------------------------------------------------------------------
def _editor_context(project, form: forms.RoutineForm, routine=None) -> dict:
    stacks = list(BaseStack.objects.filter(enabled=True).order_by("name"))
    return {
        "project": project,
        "routine": routine,
        "value": form.value,
        "errors": form.errors,
        "base_stacks": stacks,
        "memory_units": list(forms.MEMORY_UNITS),
        "time_units": list(forms.TIME_UNITS),
        "upload_config": {
            "missing_url": reverse("files-jobstore-missing", args=[project.slug]),
            "push_url": reverse("files-jobstore-push-url", args=[project.slug]),
        },
    }


def _save(request, project, form: forms.RoutineForm, routine=None):
    """The saved routine, or None with the service's message put at its field."""
    if form.errors:
        return None
    try:
        return services.save_routine(
            project=project,
            user=request.user,
            task=form.task,
            description=form.value["description"],
            routine=routine,
        )
    except Forbidden:
        raise
    except DomainError as exc:
        form.add(forms.field_of(exc.detail, form.value), exc.detail)
        return None


@page
@require_http_methods(["GET", "POST"])
def routine_new(request, slug: str):
    project = permissions.get_project(request.user, slug, permissions.RUN)
    form = forms.RoutineForm(value=forms.blank_value())
    if request.method == "POST":
        form = forms.parse_routine(request.POST)
        routine = _save(request, project, form)
        if routine is not None:
            return redirect("web-routine", pk=routine.pk)
    context = _editor_context(project, form)
    return render(request, "web/routine_edit.html", context, status=400 if form.errors else 200)


@page
@require_http_methods(["GET", "POST"])
def routine_edit(request, pk: int):
    routine = permissions.readable_routine(request.user, pk)
    project = permissions.get_project(request.user, routine.project.slug, permissions.RUN)
    latest = routine.latest_version
    form = forms.RoutineForm(value=forms.value_of(routine, latest.spec if latest else {}))
    if request.method == "POST":
        form = forms.parse_routine(request.POST)
        before = latest.pk if latest else None
        saved = _save(request, project, form, routine)
        if saved is not None:
            saved.refresh_from_db()
            changed = "new" if saved.latest_version_id != before else "same"
            return redirect(f"{reverse('web-routine', args=[saved.pk])}?saved={changed}")
    context = _editor_context(project, form, routine)
    return render(request, "web/routine_edit.html", context, status=400 if form.errors else 200)


# --- versions and what changed ----------------------------------------------------------------------
def _files_of(routine: Routine, spec: dict) -> dict[str, str] | None:
    sha = spec_diff.manifest_sha(spec)
    if sha is None:
        return None
    try:
        return {e["path"]: e["hash"] for e in jobstore.load_manifest(project=routine.project, sha1=sha)}
    except DomainError:
        return None


def _version(routine: Routine, number) -> RoutineVersion | None:
    try:
        return routine.versions.select_related("created_by").filter(number=int(number)).first()
    except (TypeError, ValueError):
        return None


@page
@require_GET
def routine_versions(request, pk: int, number: int | None = None):
    """Every version of a routine; one version's spec; the changes between two (`?a=1&b=2`)."""
    routine = permissions.readable_routine(request.user, pk)
    versions = list(routine.versions.select_related("created_by").order_by("-number"))
    shown = _version(routine, number) if number is not None else None
    if number is not None and shown is None:
        raise NotFound(f"Version {number} of this routine does not exist.")
    a = _version(routine, request.GET.get("a")) if "a" in request.GET else None
    b = _version(routine, request.GET.get("b")) if "b" in request.GET else None
    if shown is not None and a is None and b is None and shown.number > 1:
        a, b = _version(routine, shown.number - 1), shown
    sections = None
    if a is not None and b is not None:
        sections = spec_diff.diff_specs(
            a.spec, b.spec, old_files=_files_of(routine, a.spec), new_files=_files_of(routine, b.spec)
        )
    context = {
        "routine": routine,
        "project": routine.project,
        "versions": versions,
        "shown": shown,
        "shown_stack": pages.stack_summary(shown.spec) if shown else "",
        "shown_code": pages.code_summary(shown.spec) if shown else "",
        "a": a,
        "b": b,
        "sections": sections,
        "bad_pair": ("a" in request.GET or "b" in request.GET) and (a is None or b is None),
    }
    return render(request, "web/routine_versions.html", context, status=400 if context["bad_pair"] else 200)


# --- sharing -------------------------------------------------------------------------------------------
@page
@require_http_methods(["GET", "POST"])
def routine_sharing(request, pk: int):
    """Who the routine is shared with; owners and maintainers share it with a username or stop sharing."""
    routine = permissions.readable_routine(request.user, pk)
    can_share = permissions.has_role(request.user, routine.project, Role.MAINTAINER)
    username, errors = "", {}
    if request.method == "POST":
        if not can_share:
            raise Forbidden("Only owners and maintainers of the routine's project can share it.")
        action = request.POST.get("action", "share")
        field = "slug" if action.endswith("project") else "username"
        username, errors = forms.parse_name(request.POST, field)
        if not errors:
            try:
                _share_action(request.user, routine, action, username)
            except Forbidden:
                raise
            except DomainError as exc:
                errors = {action if action.startswith("unshare") else field: [exc.detail]}
            else:
                return redirect("web-routine-sharing", pk=routine.pk)
    context = {
        "routine": routine,
        "project": routine.project,
        "grantees": permissions.routine_grantees(routine) if can_share else [],
        "shared_projects": permissions.projects_shared_with(routine) if can_share else [],
        "can_share": can_share,
        "username": username,
        "errors": errors,
    }
    return render(request, "web/routine_sharing.html", context, status=400 if errors else 200)


def _share_action(actor, routine, action: str, name: str) -> None:
    if action == "share_project":
        services.share_routine_with_project(routine=routine, actor=actor, slug=name)
    elif action == "unshare_project":
        services.unshare_routine_from_project(routine=routine, actor=actor, slug=name)
    elif action == "unshare":
        services.unshare_routine(routine=routine, actor=actor, username=name)
    else:
        services.share_routine(routine=routine, actor=actor, username=name)


@page
@require_http_methods(["GET", "POST"])
def routine_copy(request, pk: int):
    """Copy a routine (one shared with you, or of another project of yours) into a project where you author."""
    routine = permissions.readable_routine(request.user, pk)
    targets = [
        p for p in permissions.visible_projects(request.user) if permissions.has_role(request.user, p, Role.MEMBER)
    ]
    data, errors = {"project": "", "name": routine.name}, {}
    if request.method == "POST":
        data = {"project": request.POST.get("project", ""), "name": request.POST.get("name", "").strip()}
        project = next((p for p in targets if p.slug == data["project"]), None)
        if project is None:
            errors = {"project": ["Choose a project where you have the member role."]}
        else:
            try:
                copy = services.copy_routine(routine=routine, user=request.user, project=project, name=data["name"])
            except DomainError as exc:
                errors = {"name": [exc.detail]}
            else:
                return redirect("web-routine", pk=copy.pk)
    context = {"routine": routine, "targets": targets, "data": data, "errors": errors}
    return render(request, "web/routine_copy.html", context, status=400 if errors else 200)


@page
@require_GET
def shared_with_me(request):
    shared = permissions.routines_shared_with(request.user).select_related("project", "latest_version")
    return render(request, "web/shared.html", {"routines": list(shared.order_by("project__slug", "name"))})
