"""The jobflow builder and the saved jobflow page. Thin: authorise, parse, call one service of jobflows.saved."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accelerator.errors import DomainError, Forbidden
from jobflows import saved
from routines import permissions
from routines.models import Role
from web.views import page

MAX_DEFINITION = 512 * 1024


def _palette(user, project) -> list[dict]:
    """The routines a node may run, with what the node panel needs (latest version, schema, defaults)."""
    out = []
    for routine in saved.usable_routines(user, project):
        version = routine.latest_version
        if version is None:
            continue
        spec = version.spec
        own = routine.project_id == project.pk
        out.append(
            {
                "routine": routine.pk,
                "version": version.number,
                "name": routine.name,
                "label": routine.name if own else f"{routine.name} (shared from {routine.project.slug})",
                "command": spec.get("command", ""),
                "conf": spec.get("conf") or {},
                "schema": spec.get("conf_schema") or None,
            }
        )
    return out


def _pinned(user, project, definition) -> list[dict]:
    """Routine versions the definition pins that are not the latest ones (the panel still shows them)."""
    specs = saved.pinned_specs(user=user, project=project, definition=definition)
    return [
        {
            "routine": r,
            "version": n,
            "name": s["name"],
            "label": f"{s['name']} v{n}",
            "command": s["spec"].get("command", ""),
            "conf": s["spec"].get("conf") or {},
            "schema": s["spec"].get("conf_schema") or None,
        }
        for (r, n), s in specs.items()
    ]


def _render_builder(request, project, *, jobflow=None, name="", description="", definition=None, error=None):
    definition = definition or {"format": "acc-jobflow/1", "nodes": [], "edges": []}
    config = {
        "project": project.slug,
        "routines": _palette(request.user, project),
        "pinned": _pinned(request.user, project, definition),
        "definition": definition,
        "error": error,
    }
    context = {
        "project": project,
        "jobflow": jobflow,
        "name": name,
        "description": description,
        "config": config,
        "error": error,
    }
    return render(request, "web/builder.html", context, status=400 if error else 200)


def _parse_definition(raw: str):
    if len(raw) > MAX_DEFINITION:
        return None, {"node": None, "message": "The jobflow is too large to save."}
    try:
        return json.loads(raw or "{}"), None
    except ValueError:
        return None, {"node": None, "message": "The builder sent a definition that is not JSON; reload the page."}


def _save(request, project, jobflow=None):
    name, description = request.POST.get("name", ""), request.POST.get("description", "")
    definition, error = _parse_definition(request.POST.get("definition", ""))
    if error is None:
        try:
            jobflow, _, _ = saved.save_jobflow(
                project=project,
                user=request.user,
                name=name,
                description=description,
                definition=definition,
                jobflow=jobflow,
            )
        except saved.InvalidDefinition as exc:
            error = {"node": exc.node, "message": exc.detail}
        except DomainError as exc:
            if isinstance(exc, Forbidden):
                raise
            error = {
                "node": None,
                "field": "name" if exc.code in ("invalid_name", "conflict") else None,
                "message": exc.detail,
            }
        else:
            return redirect("web-jobflow", pk=jobflow.pk)
    return _render_builder(
        request, project, jobflow=jobflow, name=name, description=description, definition=definition, error=error
    )


@page
@require_http_methods(["GET", "POST"])
def builder_new(request, slug: str):
    project = permissions.get_project(request.user, slug, Role.MEMBER)
    if request.method == "POST":
        return _save(request, project)
    return _render_builder(request, project)


@page
@require_POST
def jobflow_import_new(request, slug: str):
    """A new jobflow from an uploaded acc-dag/1 JSON or wkube.py (parsed, never run)."""
    project = permissions.get_project(request.user, slug, Role.MEMBER)
    name, upload = request.POST.get("name", ""), request.FILES.get("file")
    error = {"node": None, "message": "Choose a wkube.py or acc-dag/1 JSON file to import."}
    if upload is not None:
        try:
            text = upload.read(saved.MAX_IMPORT + 1).decode("utf-8")
            jobflow, _, _ = saved.import_jobflow(
                project=project, user=request.user, text=text, filename=upload.name, name=name
            )
        except UnicodeDecodeError:
            error["message"] = "The file is not UTF-8 text."
        except Forbidden:
            raise
        except DomainError as exc:
            error["message"] = exc.detail
        else:
            return redirect("web-jobflow", pk=jobflow.pk)
    return _render_builder(request, project, name=name, error={**error, "field": "import"})


@page
@require_http_methods(["GET", "POST"])
def builder_edit(request, pk: int):
    jobflow = saved.readable_jobflow(request.user, pk)
    project = permissions.get_project(request.user, jobflow.project.slug, Role.MEMBER)
    if request.method == "POST":
        return _save(request, project, jobflow)
    version = jobflow.latest_version
    return _render_builder(
        request,
        project,
        jobflow=jobflow,
        name=jobflow.name,
        description=jobflow.description,
        definition=version.definition if version else None,
    )


def _nodes_with_names(user, jobflow) -> list[dict]:
    version = jobflow.latest_version
    if version is None:
        return []
    specs = saved.pinned_specs(user=user, project=jobflow.project, definition=version.definition)
    return [
        {**n, "routine_name": specs.get((n["routine"], n["version"]), {}).get("name")}
        for n in version.definition["nodes"]
    ]


def _jobflow_page(request, jobflow, *, error: str = "", status: int = 200):
    latest = saved.latest_run_root(jobflow)
    context = {
        "jobflow": jobflow,
        "project": jobflow.project,
        "versions": list(jobflow.versions.select_related("created_by")[:30]),
        "runs": saved.runs_of(jobflow),
        "latest_run": latest,
        "can_run": permissions.has_role(request.user, jobflow.project, Role.MEMBER),
        "nodes": _nodes_with_names(request.user, jobflow),
        "error": error,
    }
    return render(request, "web/jobflow.html", context, status=status)


@page
@require_GET
def jobflow_page(request, pk: int):
    return _jobflow_page(request, saved.readable_jobflow(request.user, pk))


@page
@require_POST
def jobflow_run(request, pk: int):
    jobflow = saved.readable_jobflow(request.user, pk)
    try:
        root = saved.run_jobflow(jobflow=jobflow, user=request.user)
    except Forbidden:
        raise
    except DomainError as exc:
        return _jobflow_page(request, jobflow, error=exc.detail, status=400)
    return redirect("web-job", pk=root.pk)


@page
@require_GET
def jobflow_export(request, pk: int):
    jobflow = saved.readable_jobflow(request.user, pk)
    try:
        filename, text = saved.export_jobflow(jobflow=jobflow, user=request.user, fmt=request.GET.get("format", ""))
    except DomainError as exc:
        return _jobflow_page(request, jobflow, error=exc.detail, status=400)
    kind = "application/json" if filename.endswith(".json") else "text/x-python"
    response = HttpResponse(text, content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@page
@require_POST
def jobflow_import(request, pk: int):
    """A new version of this jobflow from an uploaded acc-dag/1 JSON or wkube.py (parsed, never run)."""
    jobflow = saved.readable_jobflow(request.user, pk)
    upload = request.FILES.get("file")
    if upload is None:
        return _jobflow_page(request, jobflow, error="Choose a wkube.py or acc-dag/1 JSON file to import.", status=400)
    try:
        text = upload.read(saved.MAX_IMPORT + 1).decode("utf-8")
        saved.import_jobflow(
            project=jobflow.project, user=request.user, text=text, filename=upload.name, jobflow=jobflow
        )
    except UnicodeDecodeError:
        return _jobflow_page(request, jobflow, error="The file is not UTF-8 text.", status=400)
    except Forbidden:
        raise
    except DomainError as exc:
        return _jobflow_page(request, jobflow, error=exc.detail, status=400)
    return redirect("web-jobflow", pk=jobflow.pk)
