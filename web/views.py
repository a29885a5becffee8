"""The pages. Thin: authorise, check the form (web.forms), call one service, render or redirect."""

from __future__ import annotations

import functools
import json
import posixpath
from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accelerator.errors import DomainError, Forbidden, NotFound
from files import services as file_services
from jobflows import services as flow_services
from jobs import permissions as job_permissions
from jobs.models import LogChunk
from routines import permissions
from routines.models import Routine
from web import forms, launchers, pages, schema_form
from web import services as web_services
from workers import dispatch
from workers import services as worker_services

_STATUS = {NotFound: 404, Forbidden: 403}


def page(view):
    """Signed-in users only; a domain error becomes an error page with its message."""

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (NotFound, Forbidden) as exc:
            return render(request, "web/error.html", {"detail": exc.detail}, status=_STATUS[type(exc)])

    return wrapper


# --- project -----------------------------------------------------------------------------
@page
@require_GET
def project_dashboard(request, slug: str):
    project = permissions.get_project(request.user, slug)
    context = pages.dashboard(project=project)
    context["can_author"] = permissions.has_role(request.user, project, permissions.RUN)
    context["can_manage"] = permissions.has_role(request.user, project, permissions.WRITE)
    shared = permissions.routines_shared_with_project(project).select_related("project", "latest_version")
    context["shared_routines"] = list(shared.order_by("project__slug", "name")[:100])
    return render(request, "web/project.html", {"project": project, **context})


@page
@require_GET
def job_list(request, slug: str | None = None):
    project = permissions.get_project(request.user, slug) if slug else None
    filters = forms.JobFilters.parse(request.GET)
    listing = pages.job_list(user=request.user, project=project, filters=filters)
    choices = pages.filter_choices(user=request.user, project=project)
    context = {"project": project, "filters": filters, **listing, **choices}
    return render(request, "web/jobs.html", context)


# --- routine and its Run form ---------------------------------------------------------------
@page
@require_http_methods(["GET", "POST"])
def routine_page(request, pk: int):
    routine = permissions.readable_routine(request.user, pk)
    version = routine.latest_version
    conf_schema = (version.spec.get("conf_schema") if version else None) or None
    defaults = (version.spec.get("conf") or {}) if version else {}
    form = forms.RunForm(selected=request.GET.getlist("selected"))
    if request.method == "POST":
        form = forms.RunForm.parse(request.POST, conf_schema)
        if not form.errors:
            try:
                job = dispatch.run_routine_on_selection(
                    routine=routine,
                    user=request.user,
                    paths=form.selected,
                    conf=form.conf,
                    secrets=form.secrets,
                    force_build=form.force_build,
                )
            except DomainError as exc:
                form.errors = {"selected" if form.selected else "root": [exc.detail]}
            else:
                return redirect("web-job", pk=job.pk)
    editor = {
        "kind": "schema" if conf_schema else "kv",
        "schema": schema_form.form_schema(conf_schema),
        "startval": schema_form.start_value(conf_schema, defaults, form.value or None),
        "errors": form.errors,
        "secrets": sorted(schema_form.secret_fields(conf_schema)),
    }
    context = {
        "routine": routine,
        "project": routine.project,
        "form": form,
        "editor": editor,
        "can_run": permissions.can_run_routine(request.user, routine),
        "can_share": permissions.has_role(request.user, routine.project, permissions.WRITE),
        **pages.routine_page(routine=routine),
    }
    if context["can_share"]:
        context["grantees"] = permissions.routine_grantees(routine)
        context["shared_projects"] = permissions.projects_shared_with(routine)
    return render(request, "web/routine.html", context, status=400 if form.errors else 200)


# --- job and jobflow run ----------------------------------------------------------------------
@page
@require_GET
def job_page(request, pk: int):
    job = job_permissions.readable_job(request.user, pk)
    context = {
        "job": job,
        "project": job.project,
        "can_cancel": job_permissions.can_cancel_job(request.user, job),
        "can_rerun": job.routine_version_id is not None
        and permissions.can_run_routine(request.user, job.routine_version.routine),
    }
    if job.routine_version_id is None:
        return render(request, "web/flow.html", {**context, **pages.flow_page(root=job)})
    return render(request, "web/job.html", {**context, **pages.job_page(job=job, user=request.user)})


@page
@require_GET
def job_log(request, pk: int):
    """The whole log as one text file, streamed chunk by chunk."""
    job = job_permissions.readable_job(request.user, pk)
    chunks = LogChunk.objects.filter(job=job).order_by("seq").values_list("text", flat=True)
    response = StreamingHttpResponse((text.encode() for text in chunks.iterator()), content_type="text/plain")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.log"'
    return response


@page
@require_POST
def job_cancel(request, pk: int):
    job = job_permissions.readable_job(request.user, pk)
    worker_services.cancel_job(job=job, user=request.user)
    return redirect("web-job", pk=job.pk)


@page
@require_POST
def job_retry(request, pk: int):
    job = job_permissions.readable_job(request.user, pk)
    try:
        flow_services.retry_flow(root=job, user=request.user)
    except DomainError as exc:
        return render(request, "web/error.html", {"detail": exc.detail, "back": job}, status=400)
    return redirect("web-job", pk=job.pk)


@page
@require_POST
def job_rerun(request, pk: int):
    job = job_permissions.readable_job(request.user, pk)
    data = {k: request.POST[k] for k in forms.RERUN["properties"] if k in request.POST}
    errors = forms.check(forms.RERUN, data)
    if errors:
        return render(
            request, "web/error.html", {"detail": "; ".join(sum(errors.values(), [])), "back": job}, status=400
        )
    try:
        new = web_services.rerun_job(job=job, user=request.user, force_build=data.get("force_build") == "on")
    except DomainError as exc:
        return render(request, "web/error.html", {"detail": exc.detail, "back": job}, status=400)
    return redirect("web-job", pk=new.pk)


# --- file explorer ------------------------------------------------------------------------------
@page
@require_http_methods(["GET", "POST"])
def file_explorer(request, slug: str, path: str = ""):
    project = permissions.get_project(request.user, slug)
    relpath = file_services.clean_relpath(path)
    if file_services.path_kind(project=project, relpath=relpath) == "file":
        return HttpResponseRedirect(f"/api/v1/projects/{project.slug}/files/{quote(relpath)}")
    errors: dict[str, list[str]] = {}
    data: dict = {}
    if request.method == "POST":
        data, errors = forms.file_action(request.POST)
        if not errors:
            try:
                return _file_action(request, project, relpath, data)
            except Forbidden:
                raise
            except DomainError as exc:
                errors = {_error_field(data): [exc.detail]}
    listing = file_services.list_folder(project=project, relpath=relpath)
    routines_ = Routine.objects.filter(project=project, latest_version__isnull=False).order_by("name")
    context = {
        "project": project,
        "listing": listing,
        "crumbs": _crumbs(relpath),
        "relpath": relpath,
        "parent": posixpath.dirname(relpath),
        "errors": errors,
        "form_error": errors.get(""),
        "posted": data,
        "posted_json": json.dumps(data),
        "routines": list(routines_),
        "can_write": permissions.can_write_files(request.user, project),
    }
    context.update({launcher.context_key: launcher.choices(request.user) for launcher in launchers.registered()})
    return render(request, "web/files.html", context, status=400 if errors else 200)


def _file_action(request, project, relpath: str, data: dict):
    found = launchers.find(data["routine"]) if data["action"] == "launch" else None
    if found is not None:
        launcher, name = found
        return HttpResponseRedirect(launcher.target(request.user, project, name, data["paths"]))
    if data["action"] == "launch":
        routine = permissions.readable_routine(request.user, int(data["routine"]))
        if routine.project_id != project.pk:
            raise NotFound("That routine is not in this project.")
        query = urlencode([("selected", p) for p in data["paths"]])
        return HttpResponseRedirect(f"/routines/{routine.pk}/?{query}")
    if not permissions.can_write_files(request.user, project):
        raise Forbidden("Changing files needs the member role in this project.")
    if data["action"] == "mkdir":
        file_services.make_folder(project=project, relpath=posixpath.join(relpath, data["name"]))
    elif data["action"] == "rename":
        file_services.rename_path(project=project, relpath=data["path"], new_name=data["new_name"])
    elif data["action"] == "move":
        file_services.move_paths(project=project, relpaths=data["paths"], folder=data["destination"])
    elif data["action"] == "delete":
        for path in data["paths"]:
            file_services.delete_path(project=project, relpath=path)
    return redirect("web-files", slug=project.slug, path=relpath)


def _error_field(data: dict) -> str:
    return {"mkdir": "name", "rename": "new_name", "move": "destination", "delete": "paths", "launch": "routine"}.get(
        data.get("action"), ""
    )


def _crumbs(relpath: str) -> list[dict]:
    crumbs, parts = [], relpath.split("/") if relpath else []
    for i, name in enumerate(parts):
        crumbs.append({"name": name, "path": "/".join(parts[: i + 1])})
    return crumbs
