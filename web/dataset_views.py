"""Dataset template pages: a project's templates, one template's rules made readable, the editor.

Thin like web.views: authorise (routines.permissions), parse the form, call one service
(routines.dataset_templates), render; a service's message shows next to the field it is about, with status
400, and nothing is saved. Every value from the rules reaches the page as text (autoescaped).
"""

from __future__ import annotations

import json

from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accelerator.errors import DomainError, Forbidden
from routines import dataset_templates as templates
from routines import permissions
from web.views import page

MAP_ROWS = 200  # values listed per map on the page; the raw JSON below has them all
# which form field a service error is shown at, by its code
FIELD_OF_CODE = {
    "invalid_slug": "slug",
    "slug_taken": "slug",
    "invalid_name": "name",
    "invalid_description": "description",
    "invalid_rules": "rules",
}
EXAMPLE_RULES = {
    "root": {
        "type": "object",
        "properties": {
            "region": {"type": "string"},
            "year": {"type": "string", "pattern": "^[0-9]{4}$"},
            "value": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"},
        },
        "required": ["region", "year", "value"],
    },
    "root_schema_declarations": {
        "time_dimension": "year",
        "value_dimension": "value",
        "region_dimension": "region",
        "region_layer_map_key": "region_layer",
    },
    "map_region": {"world": {"region_layer": "global"}},
}


# --- what the page shows of the rules ---------------------------------------------------------------
def _constraint(schema) -> str:
    """One line saying what a column accepts, from its JSON Schema."""
    if not isinstance(schema, dict):
        return "anything" if schema is True else "nothing" if schema is False else ""
    parts = []
    for key in ("type", "pattern", "format", "minLength", "maxLength"):
        if key in schema:
            value = schema[key]
            if key == "type" and isinstance(value, list):
                value = " or ".join(map(str, value))
            parts.append(f"{key} {value if isinstance(value, str) else json.dumps(value)}")
    enum = schema.get("enum")
    if isinstance(enum, list):
        parts.append("one of " + ", ".join(str(v) for v in enum[:20]) + (" …" if len(enum) > 20 else ""))
    if "const" in schema:
        parts.append(f"exactly {json.dumps(schema['const'])}")
    return "; ".join(parts)


def describe_rules(rules) -> dict:
    """The rules as tables: columns, declarations, allowed values per map, template validators, raw JSON."""
    rules = rules if isinstance(rules, dict) else {}
    root = rules.get("root") if isinstance(rules.get("root"), dict) else {}
    properties = root.get("properties") if isinstance(root.get("properties"), dict) else {}
    listed = root.get("required") if isinstance(root.get("required"), list) else []
    required = [name for name in listed if isinstance(name, str) and name in properties]
    declared = rules.get("root_schema_declarations")
    declared = declared if isinstance(declared, dict) else {}
    roles = {value: key.replace("_", " ") for key, value in declared.items() if isinstance(value, str)}
    columns, maps = [], []
    # PostgreSQL's jsonb does not keep the order of keys; `required` is a list and keeps it
    order = list(dict.fromkeys(required)) + [name for name in properties if name not in required]
    for name in order:
        schema = properties[name]
        values = rules.get(f"map_{name}")
        if isinstance(values, dict):
            maps.append(_map_table(name, values, region=name == declared.get("region_dimension")))
        columns.append(
            {
                "name": name,
                "role": roles.get(name, ""),
                "required": name in required,
                "accepts": _constraint(schema),
                "map": f"map_{name}" if isinstance(values, dict) else "",
                "map_size": len(values) if isinstance(values, dict) else 0,
                "description": schema.get("description", "") if isinstance(schema, dict) else "",
            }
        )
    return {
        "columns": columns,
        "declarations": [(key, declared.get(key, "")) for key in templates.DECLARATIONS],
        "maps": maps,
        "validators": _validators(rules.get("template_validators")),
        "header": ",".join(order),
        "time_dimension": declared.get("time_dimension", ""),
        "raw": json.dumps(rules, indent=2, ensure_ascii=False, sort_keys=True),
    }


def _map_table(column: str, values: dict, *, region: bool) -> dict:
    rows = []
    for value, entry in sorted(values.items())[:MAP_ROWS]:
        if region and isinstance(entry, dict):
            extra = str(entry.get("region_layer", ""))
        else:
            extra = json.dumps(entry, ensure_ascii=False) if entry not in ({}, None, "") else ""
        rows.append((value, extra))
    return {
        "column": column,
        "key": f"map_{column}",
        "region": region,
        "rows": rows,
        "count": len(values),
        "more": max(0, len(values) - MAP_ROWS),
    }


def _validators(validators) -> list[dict]:
    if not isinstance(validators, dict):
        return []
    found = []
    for column, conditions in validators.items():
        for condition, pointers in conditions.items() if isinstance(conditions, dict) else []:
            path = " → ".join(str(p) for p in pointers) if isinstance(pointers, list) else str(pointers)
            found.append({"column": column, "condition": condition.replace("_", " "), "pointers": path})
    return found


# --- the form -----------------------------------------------------------------------------------------
def parse_form(post) -> tuple[dict, dict, dict]:
    """(value to show again, fields for the service, errors by field) of a posted template form."""
    value = {
        "slug": post.get("slug", "").strip(),
        "name": post.get("name", "").strip(),
        "description": post.get("description", "").strip(),
        "public": post.get("public") == "on",
        "rules": post.get("rules", ""),
    }
    errors: dict[str, list[str]] = {}
    fields = {key: value[key] for key in ("slug", "name", "description", "public")}
    try:
        fields["rules"] = json.loads(value["rules"])
    except json.JSONDecodeError as exc:
        errors["rules"] = [f"The rules are not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."]
    return value, fields, errors


def _form_value(template) -> dict:
    return {
        "slug": template.slug,
        "name": template.name,
        "description": template.description,
        "public": template.public,
        "rules": json.dumps(template.rules, indent=2, ensure_ascii=False, sort_keys=True),
    }


def _save(request, project, fields: dict, errors: dict, template=None):
    """The saved template, or None with the service's message put at its field."""
    if errors:
        return None
    try:
        if template is None:
            return templates.create_template(project=project, actor=request.user, **fields)
        return templates.update_template(template=template, actor=request.user, **fields)
    except Forbidden:
        raise
    except DomainError as exc:
        errors.setdefault(FIELD_OF_CODE.get(exc.code, "form"), []).append(exc.detail)
        return None


def _can_write(user, project) -> bool:
    return permissions.has_role(user, project, permissions.WRITE)


# --- pages --------------------------------------------------------------------------------------------
@page
@require_GET
def template_list(request, slug: str):
    project = permissions.get_project(request.user, slug)
    context = {
        "project": project,
        "templates": list(templates.project_templates(project=project)),
        "can_write": _can_write(request.user, project),
    }
    return render(request, "web/dataset_templates.html", context)


@page
@require_GET
def template_page(request, slug: str, template_slug: str):
    project = permissions.get_project(request.user, slug)
    template = templates.get_template(project=project, slug=template_slug)
    context = {
        "project": project,
        "template": template,
        "rules": describe_rules(template.rules),
        "can_write": _can_write(request.user, project),
        "server": request.build_absolute_uri("/").rstrip("/"),
    }
    return render(request, "web/dataset_template.html", context)


@page
@require_http_methods(["GET", "POST"])
def template_new(request, slug: str):
    project = permissions.get_project(request.user, slug, permissions.WRITE)
    value = {"slug": "", "name": "", "description": "", "public": False, "rules": json.dumps(EXAMPLE_RULES, indent=2)}
    errors: dict = {}
    if request.method == "POST":
        value, fields, errors = parse_form(request.POST)
        template = _save(request, project, fields, errors)
        if template is not None:
            return redirect("web-dataset-template", slug=project.slug, template_slug=template.slug)
    context = {"project": project, "template": None, "value": value, "errors": errors}
    return render(request, "web/dataset_template_edit.html", context, status=400 if errors else 200)


@page
@require_http_methods(["GET", "POST"])
def template_edit(request, slug: str, template_slug: str):
    project = permissions.get_project(request.user, slug, permissions.WRITE)
    template = templates.get_template(project=project, slug=template_slug)
    value, errors = _form_value(template), {}
    if request.method == "POST":
        value, fields, errors = parse_form(request.POST)
        saved = _save(request, project, fields, errors, template)
        if saved is not None:
            return redirect("web-dataset-template", slug=project.slug, template_slug=saved.slug)
        template.refresh_from_db()  # a refused save may have changed the object before the database said no
    context = {"project": project, "template": template, "value": value, "errors": errors}
    return render(request, "web/dataset_template_edit.html", context, status=400 if errors else 200)


@page
@require_POST
def template_public(request, slug: str, template_slug: str):
    project = permissions.get_project(request.user, slug, permissions.WRITE)
    template = templates.get_template(project=project, slug=template_slug)
    templates.update_template(template=template, actor=request.user, public=request.POST.get("public") == "on")
    return redirect("web-dataset-template", slug=project.slug, template_slug=template.slug)


@page
@require_POST
def template_delete(request, slug: str, template_slug: str):
    project = permissions.get_project(request.user, slug, permissions.WRITE)
    template = templates.get_template(project=project, slug=template_slug)
    templates.delete_template(template=template, actor=request.user)
    return redirect("web-dataset-templates", slug=project.slug)
