"""The hosting pages: catalog, publish, a model's page with its launch form, manage, and the embeddable widget.

Thin like web.views: access first (hosting.access), the form checked
(hosting.forms), one service call (hosting.services), render or redirect.
A model someone may not see answers exactly like a slug that does not
exist. A link token given as `?token=` is remembered in the session for
that slug, so later pages and posts work without it in the address.
"""

from __future__ import annotations

import functools
import hmac
import json
import posixpath
import re
import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accelerator.errors import DomainError, Forbidden, NotFound
from files import services as file_services
from hosting import access, forms, services
from hosting.models import HostedModel, HostedRun, HostedVersion, Policy, VersionStatus, Via
from jobs import permissions as job_permissions
from jobs.models import Job
from jobs.states import FINAL, Status
from routines.models import ROLE_RANK, Membership, Project, Role, Routine
from web import launchers, schema_form

SESSION_TOKENS = "hosted_link_tokens"
RECENT_RUNS = 10
_STATUS = {NotFound: 404, Forbidden: 403}
_MEMBER_ROLES = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[Role.MEMBER]]


def hosted_page(view=None, *, widget: bool = False):
    """Signed-in users only; NotFound and Forbidden become an error page (inside the widget: a bare one).

    Widget responses may be framed by the model's embed origins only: the
    Content-Security-Policy's frame-ancestors names them (the rest of the
    policy stays); every other page keeps frame-ancestors 'none' and
    X-Frame-Options DENY.
    """
    if view is None:
        return functools.partial(hosted_page, widget=widget)
    template = "hosting/widget_error.html" if widget else "web/error.html"

    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (NotFound, Forbidden) as exc:
            return render(request, template, {"detail": exc.detail}, status=_STATUS[type(exc)])

    if not widget:
        return login_required(guarded)
    signed_in = login_required(guarded)

    @xframe_options_exempt
    @functools.wraps(view)
    def framed(request, *args, **kwargs):
        request.hosted_origins = []  # set once the model is known to be visible; a refusal reveals none
        response = signed_in(request, *args, **kwargs)
        response._csp_replace = {"frame-ancestors": ["'self'", *request.hosted_origins]}  # read by CSPMiddleware
        return response

    return framed


# --- access: the model and the link token ------------------------------------------------------
def _holds_link(model: HostedModel, token: str | None) -> bool:
    return bool(token and model.link_token_hash) and hmac.compare_digest(
        access.token_hash(token), model.link_token_hash
    )


def _model(request, slug: str, *, manage: bool = False) -> tuple[HostedModel, str | None]:
    """The model `slug` as access.get_model answers for this request, and the link token it presented."""
    given = request.GET.get("token") or None
    token = given or request.session.get(SESSION_TOKENS, {}).get(slug)
    model = access.get_model(request.user, slug, token=token, manage=manage)
    if given and _holds_link(model, given):
        request.session[SESSION_TOKENS] = {**request.session.get(SESSION_TOKENS, {}), slug: given}
    request.hosted_origins = list(model.embed_origins or [])
    return model, token


def _member_projects(user):
    """Projects where `user` may start jobs (member or higher), their own area excluded."""
    memberships = Membership.objects.filter(user=user, role__in=_MEMBER_ROLES).values("project")
    return Project.objects.filter(pk__in=memberships, personal_of__isnull=True).order_by("slug")


def launchable_models(user) -> list[HostedModel]:
    """Hosted models `user` sees in the catalog and may launch, for the file explorer's launch select."""
    models = access.visible_models(user).select_related("project").order_by("title", "slug")[:200]
    return [model for model in models if access.can_launch(user, model)]


# --- catalog -------------------------------------------------------------------------------------
@hosted_page
@require_GET
def catalog(request):
    q = request.GET.get("q", "").strip()[:200]
    tag = request.GET.get("tag", "").strip().lower()[:32]
    visible = access.visible_models(request.user)
    models = visible.select_related("project", "author", "default_version")
    for word in q.split()[:8]:
        models = models.filter(Q(title__icontains=word) | Q(description__icontains=word) | Q(slug__icontains=word))
    if tag:  # the JSON text holds each tag in quotes; unlike tags__contains this also works on SQLite
        models = models.filter(tags__icontains=json.dumps(tag))
    tags = sorted({t for tags_ in visible.values_list("tags", flat=True)[:500] for t in tags_ or []})
    context = {"models": list(models.order_by("title", "slug")[:200]), "q": q, "tag": tag, "tags": tags}
    return render(request, "hosting/catalog.html", context)


def _placed(errors: dict[str, list[str]], fields) -> dict[str, list[str]]:
    """Errors by the field a template shows them at; any other (and the form's own) under "form"."""
    placed: dict[str, list[str]] = {}
    for name, found in errors.items():
        placed.setdefault(name if name in fields else "form", []).extend(found)
    return placed


# --- publish -------------------------------------------------------------------------------------
@hosted_page
@require_http_methods(["GET", "POST"])
def publish(request):
    projects = list(_member_projects(request.user))
    routines = list(
        Routine.objects.filter(project__in=projects, latest_version__isnull=False)
        .select_related("project", "latest_version")
        .order_by("project__slug", "name")
    )
    errors: dict[str, list[str]] = {}
    notice = ""
    if request.method == "POST":
        posted, data, errors = forms.publish_form(request.POST)
        if not errors:
            try:
                model = services.publish(user=request.user, project_slug=posted["project"], data=data)
            except DomainError as exc:
                errors = {forms.field_of(exc.detail): [exc.detail]}
            else:
                messages.success(request, f"Published '{model.title}' as version 1.")
                return redirect("web-hosted", slug=model.slug)
    else:
        posted, notice = _publish_defaults(request, projects, routines)
    context = {
        "notice": notice,
        "errors": _placed(errors, forms.PUBLISH["properties"]),
        "projects": projects,
        "routines": routines,
        "schemas": {str(r.pk): r.latest_version.spec.get("conf_schema") or {} for r in routines},
        "posted": posted,
        "policies": Policy.choices,
    }
    return render(request, "hosting/publish.html", context, status=400 if errors else 200)


def _publish_defaults(request, projects, routines) -> tuple[dict, str]:
    """The form as it opens, and a note when what the address asked for cannot be published by this viewer.

    `?routine=<id>` chooses that routine, `?run=<root job id>` that jobflow run: only one in a project where
    the viewer may publish (member or higher) and may read it; anything else is reported alike.
    """
    asked_routine, asked_run = request.GET.get("routine", "").strip(), request.GET.get("run", "").strip()
    if asked_run:
        root, notice = _publishable_run(request.user, asked_run, projects)
        if root is not None:
            name = root.name or f"jobflow {root.pk}"
            return _defaults(project=root.project.slug, jobflow=str(root.pk), name=name, schema=None), ""
        return _first_routine_defaults(routines, projects), notice
    chosen = next((r for r in routines if str(r.pk) == asked_routine), None)
    notice = ""
    if asked_routine and chosen is None:
        notice = (
            f"Routine {asked_routine[:20]} cannot be published from here: it was not found, you may not read it, or "
            "publishing it needs the member role in its project."
        )
    if chosen is None:
        return _first_routine_defaults(routines, projects), notice
    schema = chosen.latest_version.spec.get("conf_schema")
    return _defaults(project=chosen.project.slug, routine=str(chosen.pk), name=chosen.name, schema=schema), notice


def _publishable_run(user, asked: str, projects) -> tuple[Job | None, str]:
    refused = (
        f"Job {asked[:20]} cannot be published from here: it is not the root of a jobflow run you may read in a "
        "project where you have the member role."
    )
    if not re.fullmatch(r"[0-9]{1,18}", asked):
        return None, refused
    try:
        root = job_permissions.readable_job(user, int(asked))
    except NotFound:
        return None, refused
    if root.routine_version_id is not None or root.project_id not in {p.pk for p in projects}:
        return None, refused
    return root, ""


def _first_routine_defaults(routines, projects) -> dict:
    first = routines[0] if routines else None
    if first is None:
        return _defaults(project=projects[0].slug if projects else "", name="", schema=None)
    schema = first.latest_version.spec.get("conf_schema")
    return _defaults(project=first.project.slug, routine=str(first.pk), name=first.name, schema=schema)


def _defaults(*, project: str, name: str, schema, routine: str = "", jobflow: str = "") -> dict:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return {
        "project": project,
        "routine": routine,
        "jobflow": jobflow,
        "title": name.replace("-", " ").capitalize(),
        "slug": slug,
        "policy": Policy.PRIVATE,
        "conf_schema": _json_text(schema or {}),
        "inputs_schema": "[]",
        "secrets_schema": "",
        "outputs": "[]",
    }


def _json_text(value) -> str:
    return json.dumps(value, indent=2) if value not in (None, "") else ""


# --- a model's page and its launch form ----------------------------------------------------------
# The launch forms carry input files. Django's CSRF middleware would read a form's body (for its token) before
# the sign-in and the access checks run, so a stranger could make the server take in a large upload only to
# refuse it. These two pages check CSRF themselves, once they know the visitor may launch the model.
def _csrf_refusal(request):
    """None when the request passes Django's CSRF check, else the 403 answer (reads a form's body)."""
    return CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {})


@csrf_exempt
@hosted_page
@require_http_methods(["GET", "POST"])
def model_page(request, slug: str):
    model, token = _model(request, slug)
    return _csrf_refusal(request) or _launch_page(request, model, token, widget=False)


@csrf_exempt
@hosted_page(widget=True)
@require_http_methods(["GET", "POST"])
def widget(request, slug: str):
    model, token = _model(request, slug)
    return _csrf_refusal(request) or _launch_page(request, model, token, widget=True)


def _launch_page(request, model: HostedModel, token: str | None, *, widget: bool):
    notice = ""
    if request.method == "POST":
        if not access.can_launch(request.user, model, token=token):
            raise Forbidden("You may see this hosted model but not launch it; ask its author for launch rights.")
        form, version, launched = _posted_launch(request, model, token, widget=widget)
        if launched is not None:
            return launched
    else:
        form = forms.LaunchForm.first(request.GET)
        version, notice = _requested_version(model, forms.LaunchForm.version_of(request.GET))
    _place_launch_errors(form, version)
    context = {
        "model": model,
        "notice": notice,
        "form": form,
        "can_launch": access.can_launch(request.user, model, token=token),
        "can_manage": access.can_manage(request.user, model),
        "widget": widget,
        **_form_context(request, model, version, form),
    }
    if not widget:
        context["versions"] = list(model.versions.select_related("successor").order_by("-number"))
        context["runs"] = _own_runs(request.user, model)
    template = "hosting/widget.html" if widget else "hosting/model.html"
    return render(request, template, context, status=400 if form.errors else 200)


def _place_launch_errors(form, version: HostedVersion | None) -> None:
    """Every message lands where the form shows it: at its field, else above the form."""
    fields = {"project", "selected"} if form.selected else {"project"}
    if version is not None:
        fields |= {f"input_{item['name']}" for item in version.inputs_schema}
        fields |= {f"secret_{name}" for name in (version.secrets_schema or {}).get("properties") or {}}
    placed: dict[str, list[str]] = {}
    for key, found in form.errors.items():
        target = key if key == "root" or key.startswith("root.") or key in fields else "root"
        placed.setdefault(target, []).extend(found)
    form.errors = placed


def _requested_version(model: HostedModel, number: int | None) -> tuple[HostedVersion | None, str]:
    """The version the form is for, and why it is not the one asked for (archived, unknown)."""
    try:
        return services.version_to_launch(model, number), ""
    except DomainError as exc:
        if number is None:
            return None, exc.detail
        fallback, _ = _requested_version(model, None)
        return fallback, exc.detail


def _posted_launch(request, model, token, *, widget: bool):
    """(form, version to show, the redirect to the run once launched, else None)."""
    number = forms.LaunchForm.version_of(request.POST)
    try:
        version = services.version_to_launch(model, number)
    except DomainError as exc:  # archived or unknown: refused before anything starts
        form = forms.LaunchForm(version=number, project=request.POST.get("project", ""))
        form.selected = request.POST.getlist("selected")
        form.errors = {"root": [exc.detail]}
        return form, _requested_version(model, None)[0], None
    form = forms.LaunchForm.parse(request.POST, request.FILES, version)
    run = None if form.errors else _launch(request, model, token, version, form, widget=widget)
    if run is None:
        return form, version, None
    if widget:
        return form, version, redirect("web-hosted-widget-run", slug=model.slug, run_id=run.pk)
    return form, version, redirect("web-job", pk=run.job_id)


def _via(request, model, token, form, *, widget: bool) -> str:
    if widget:
        return Via.WIDGET
    if form.selected:
        return Via.EXPLORER
    if model.policy == Policy.LINK and token and not access.can_view(request.user, model):
        return Via.LINK
    return Via.FORM


def _launch(request, model, token, version, form, *, widget: bool):
    """Store the uploads in the target project, then launch; on a refusal the uploads are removed again."""
    stored, project = [], None
    try:
        project = services.target_project(request.user, form.project or None)
        inputs = dict(form.inputs)
        for name, upload in form.uploads.items():
            inputs[name] = _store_upload(model, project, upload)
            stored.append(inputs[name])
        return services.launch(
            model=model,
            user=request.user,
            token=token,
            version=version.number,
            conf=form.conf,
            inputs=inputs,
            secrets=form.secrets,
            project=project.slug,
            selected=form.selected,
            via=_via(request, model, token, form, widget=widget),
        )
    except DomainError as exc:
        for relpath in stored:
            file_services.delete_path(project=project, relpath=posixpath.dirname(relpath))
        form.errors.setdefault(forms.field_of(exc.detail) or "root", []).append(exc.detail)
        return None


def _store_upload(model: HostedModel, project: Project, upload) -> str:
    """Uploads go to `hosted/<slug>/uploads/<random>/<filename>`, so two launches never share a file."""
    name = posixpath.basename((upload.name or "").replace("\\", "/"))
    name = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" .")[:120] or "upload"
    relpath = f"hosted/{model.slug}/uploads/{secrets.token_hex(8)}/{name}"
    file_services.write_file(project=project, relpath=relpath, stream=upload)
    return relpath


def _form_context(request, model: HostedModel, version: HostedVersion | None, form) -> dict:
    """What the launch form partial shows for `version`: editor, inputs, secrets, target projects."""
    if version is None:
        return {"version": None}
    conf_schema = version.conf_schema or {"type": "object", "properties": {}}
    routine_conf = (version.routine_version.spec.get("conf") or {}) if version.routine_version_id else {}
    editor = {
        "kind": "schema",
        "schema": conf_schema,
        "startval": schema_form.start_value(conf_schema, routine_conf, form.value or None),
        "errors": form.editor_errors,
        "secrets": sorted(schema_form.secret_fields(conf_schema)),
    }
    secrets_schema = version.secrets_schema or {}
    required = set(secrets_schema.get("required") or [])
    secret_fields = [
        {
            "name": name,
            "title": (prop or {}).get("title") or name,
            "description": (prop or {}).get("description") or "",
            "required": name in required,
            "errors": form.errors.get(f"secret_{name}", []),
        }
        for name, prop in (secrets_schema.get("properties") or {}).items()
    ]
    inputs = [
        {
            **item,
            "value": form.inputs.get(item["name"], ""),
            "errors": form.errors.get(f"input_{item['name']}", []),
            "upload_lost": item["name"] in form.uploads,
        }
        for item in version.inputs_schema
    ]
    home = Project.objects.filter(personal_of=request.user).only("slug").first()
    projects = list(_member_projects(request.user))
    offered = {p.slug for p in projects} | ({home.slug} if home else set())
    return {
        "version": version,
        "runnable": list(model.versions.exclude(status=VersionStatus.ARCHIVED).order_by("-number")),
        "deprecation": _deprecation(model, version),
        "editor": editor,
        "inputs": inputs,
        "secret_fields": secret_fields,
        "home": home,
        "projects": projects,
        # the explorer's project, offered even without launch rights there, so the refusal names the reason
        "extra_project": form.project if form.project and form.project not in offered else "",
    }


def _deprecation(model: HostedModel, version: HostedVersion) -> str:
    if version.status != VersionStatus.DEPRECATED:
        return ""
    successor = version.successor
    if successor is None and model.default_version_id not in (None, version.pk):
        successor = model.default_version
    if successor is None:
        return f"Version {version.number} is deprecated."
    return f"Version {version.number} is deprecated; use version {successor.number}."


def _own_runs(user, model: HostedModel) -> list:
    runs = list(services.runs_for(user, model).filter(user=user).order_by("-pk")[:RECENT_RUNS])
    for run in runs:
        run.output_files = _outputs(run) if run.job.status == Status.SUCCEEDED else []
    return runs


def _outputs(run) -> list:
    """The run's output files, each named by its path below the run's output folder."""
    outputs = services.run_outputs(run)
    for output in outputs:
        output.name = output.path.removeprefix(run.output_folder + "/")
    return outputs


# --- the widget's run page -------------------------------------------------------------------------
@hosted_page(widget=True)
@require_GET
def widget_run(request, slug: str, run_id: int):
    """One's own run stays readable whatever one's access to the model is now; nobody else's is shown."""
    run = services.own_run(request.user, slug, run_id)
    if run is None:
        raise NotFound(f"Run {run_id} of '{slug}' was not found, or it is not yours.")
    request.hosted_origins = list(run.model.embed_origins or [])
    succeeded = run.job.status == Status.SUCCEEDED
    context = {
        "model": run.model,
        "run": run,
        "final": run.job.status in FINAL,
        "outputs": _outputs(run) if succeeded else [],
    }
    return render(request, "hosting/widget_run.html", context)


# --- manage ------------------------------------------------------------------------------------------
@hosted_page
@require_http_methods(["GET", "POST"])
def manage(request, slug: str):
    model, _ = _model(request, slug, manage=True)
    action, posted, errors = "", {}, {}
    if request.method == "POST":
        action, posted, data, errors = forms.manage_form(request.POST)
        if not errors:
            try:
                done = _manage_action(request, model, action, data)
            except DomainError as exc:
                errors = {forms.field_of(exc.detail): [exc.detail]}
            else:
                messages.success(request, done)
                return redirect("web-hosted-manage", slug=model.slug)
        model.refresh_from_db()
    context = {
        "model": model,
        "action": action,
        "errors": _placed(errors, forms.MANAGE.get(action, {}).get("properties", {})),
        **_manage_context(request, model, action, posted),
    }
    return render(request, "hosting/manage.html", context, status=400 if errors else 200)


def _manage_action(request, model: HostedModel, action: str, data: dict) -> str:
    """Run one manage form's service call; the message says what changed."""
    user = request.user
    if action == "edit":
        services.update_model(model=model, user=user, data=data)
        return "Saved."
    if action == "version":
        version = services.add_version(model=model, user=user, data=data)
        return f"Published version {version.number}."
    if action == "status":
        version = services.set_version_status(model=model, user=user, **data)
        return f"Version {version.number} is now {version.status}."
    if action == "rotate":
        services.rotate_link(model=model, user=user)
        return "A new link was issued; the previous link no longer works."
    if action == "revoke":
        services.revoke_link(model=model, user=user)
        return "The link was revoked; nobody gets in with a link until you issue a new one."
    services.set_share(model=model, user=user, **data)
    who = data["username"] or f"group {data['group']}"
    return f"No longer shared with {who}." if data.get("remove") else f"Shared with {who}."


def _manage_context(request, model: HostedModel, action: str, posted: dict) -> dict:
    versions = list(model.versions.select_related("successor", "routine_version__routine").order_by("-number"))
    current = model.default_version
    edit = (
        posted
        if action == "edit"
        else {
            "title": model.title,
            "description": model.description,
            "tags": ", ".join(model.tags),
            "policy": model.policy,
            "embed_origins": "\n".join(model.embed_origins),
            "default_version": str(model.default_version.number) if model.default_version else "",
        }
    )
    schemas = (
        posted
        if action == "version"
        else {name: _json_text(getattr(current, name) if current else None) for name in forms.SCHEMA_FIELDS}
    )
    token = access.link_token_of(model)
    link = request.build_absolute_uri(f"/hosted/{model.slug}/?token={token}") if token else ""
    widget_url = request.build_absolute_uri(f"/hosted/{model.slug}/widget/")
    if token and model.policy == Policy.LINK:
        widget_url += f"?token={token}"
    return {
        "versions": versions,
        "edit": edit,
        "schemas": schemas,
        "posted": posted,
        "policies": Policy.choices,
        "statuses": VersionStatus.choices,
        "link": link,
        "widget_url": widget_url,
        "shares": access.shares_of(model),
        "usage": services.usage(model),
        "runs": _all_runs(request.user, model),
    }


def _all_runs(user, model: HostedModel) -> list[dict]:
    """Every run for the manage page: who, which version, status and duration; nothing the launcher brought."""
    rows = []
    for run in services.runs_for(user, model).order_by("-pk")[:100]:
        job = run.job  # from launch to finish, as services.usage measures it
        seconds = (job.finished_at - job.created_at).total_seconds() if job.finished_at else None
        rows.append(
            {
                "id": run.pk,
                "user": run.user.username,
                "version": run.version.number,
                "status": job.status,
                "via": run.get_via_display(),
                "created_at": run.created_at,
                "duration": seconds,
                "job": job.pk if run.user_id == user.id else None,
            }
        )
    return rows


def _explorer_target(user, project, slug: str, paths: list[str]) -> str:
    """A hosted model's page, with the explorer's project and selection to launch on."""
    model = access.get_model(user, slug)
    if not access.can_launch(user, model):
        raise NotFound(access.not_found_message(slug, None))
    query = urlencode([("project", project.slug), *(("selected", p) for p in paths)])
    return f"/hosted/{model.slug}/?{query}"


explorer_launcher = launchers.Launcher(
    prefix="hosted", context_key="hosted_models", choices=launchable_models, target=_explorer_target
)


def job_origin(user, job) -> launchers.Origin | None:
    """The hosted model a job (or a node of a jobflow run) was launched from, for its job page (registered with
    web.launchers at start). Linked for whoever may see the model, and for its launcher (a link-only model's page
    takes the token their session remembers, or says how to get a new one)."""
    carriers = [job.pk] + ([job.flow_run.root_id] if job.flow_run_id else [])
    run = HostedRun.objects.select_related("model").filter(job_id__in=carriers).first()
    if run is None:
        return None
    model = run.model
    url = f"/hosted/{model.slug}/" if run.user_id == user.pk or access.can_view(user, model) else ""
    return launchers.Origin(kind="hosted model", title=model.title, url=url)
