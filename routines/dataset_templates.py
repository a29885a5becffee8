"""Dataset templates: the rules `accli validate <project> <template> file.csv` checks a CSV file against.

The client (accli 2.0.14) fetches a template's `rules` without signing in,
lower-cases the whole file (header included), reads it with csv.DictReader
(so every cell is a string) and, row by row:

- validates the row with jsonschema against `rules["root"]`;
- for each property of `root` other than the time and value dimensions, looks
  the cell up in `rules["map_<property>"]` when that map exists;
- reads `rules["map_<region_dimension>"][region]["region_layer"]` into the
  key `region_layer_map_key` of the row;
- applies `rules["template_validators"]`, when given.

`check_rules` refuses, with a message that names the key, every rule set the
client would crash on or could never accept a row of, so a mistake shows when
the template is saved and not as a stack trace on someone else's machine.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accelerator.errors import Conflict, Forbidden, InvalidInput, NotFound
from routines import permissions
from routines.models import DatasetTemplate, Project, slug_validator

DECLARATIONS = ("time_dimension", "value_dimension", "region_dimension", "region_layer_map_key")
# the declarations that name a column of the CSV file; region_layer_map_key names the key the client adds
COLUMN_DECLARATIONS = DECLARATIONS[:3]
CONDITIONS = ("value_equals", "is_subset_of_map")
NAME_MAX, DESCRIPTION_MAX = 200, 10_000
SHOWN = 5  # offending keys named in one message
RESERVED_SLUGS = {"new"}  # /projects/<slug>/dataset-templates/new/ is the page that creates one


class RulesError(InvalidInput):
    """Rules the client cannot use; `detail` names the key and says what to write instead."""

    code = "invalid_rules"


def _names(items) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


# --- the rules -------------------------------------------------------------------------------------
def check_rules(rules) -> None:
    """Raise RulesError unless `rules` is a rule set accli validate can use."""
    if not isinstance(rules, dict):
        raise RulesError(
            'rules must be a JSON object with "root", "root_schema_declarations" and the maps, '
            'e.g. {"root": {"type": "object", "properties": {...}}, "root_schema_declarations": {...}}.'
        )
    properties = _check_root(rules.get("root"))
    declarations = _check_declarations(rules.get("root_schema_declarations"), properties)
    _check_maps(rules, properties, declarations)
    _check_template_validators(rules, properties)


def _check_root(root) -> dict:
    from jsonschema import Draft202012Validator, SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(root, dict):
        raise RulesError(
            'rules.root is missing or not an object: give the JSON Schema of one CSV row, e.g. {"type": "object", '
            '"properties": {"region": {"type": "string"}, "value": {"type": "string"}}, "required": ["region"]}.'
        )
    declared = root.get("$schema", None)
    if declared is not None and (not isinstance(declared, str) or validator_for(root, default=None) is None):
        raise RulesError(
            f"rules.root.$schema {str(declared)[:100]!r} is not a JSON Schema version jsonschema knows; "
            "leave $schema out (draft 2020-12) or name a known draft."
        )
    validator = validator_for(root, default=Draft202012Validator) if declared else Draft202012Validator
    try:
        validator.check_schema(root)
    except SchemaError as exc:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)
        raise RulesError(f"rules.root{where} is not a valid JSON Schema: {exc.message[:300]}") from None
    if root.get("type", "object") != "object":
        raise RulesError('rules.root must describe one CSV row, an object: set "type": "object" or leave it out.')
    properties = root.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise RulesError(
            "rules.root.properties must name the CSV columns, one property per column, e.g. "
            '{"region": {"type": "string"}, "year": {"type": "string", "pattern": "^[0-9]{4}$"}}.'
        )
    upper = [name for name in properties if name != name.lower()]
    if upper:
        raise RulesError(
            f"rules.root.properties {_names(upper)}: accli lower-cases the whole file, header included, before it "
            "validates, so column names must be lower-case."
        )
    keywords = [name for name in properties if name in _schema_keywords()]
    if keywords:
        raise RulesError(
            f"rules.root.properties {_names(keywords)}: accli 2.0.14 hands each row to jsonschema as if it were a "
            "schema, so a column named like a JSON Schema keyword makes every row fail; rename the column."
        )
    for name, schema in properties.items():
        _check_column(name, schema)
    required = root.get("required") or []
    unknown = [name for name in required if name not in properties]
    if unknown:
        raise RulesError(f"rules.root.required names {_names(unknown)}, which rules.root.properties does not define.")
    return properties


def _schema_keywords() -> set[str]:
    """Keywords whose value jsonschema checks; annotations such as title and description are harmless."""
    from jsonschema import Draft202012Validator

    return set(Draft202012Validator.VALIDATORS) - {"format"} | {
        "$schema", "$id", "$defs", "definitions", "$anchor", "$dynamicAnchor", "$vocabulary", "examples",
        "deprecated", "readOnly", "writeOnly",
    }  # fmt: skip


def _check_column(name: str, schema) -> None:
    """Every cell reaches the schema as lower-case text: a type or value it can never have refuses every row."""
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if kind is not None and "string" not in kinds:
        raise RulesError(
            f"rules.root.properties.{name}.type is {kind!r}, but accli reads every CSV cell as text, so no row "
            'would pass: use "type": "string", with a "pattern" for numbers, e.g. "^-?[0-9]+(\\\\.[0-9]+)?$".'
        )
    values = list(schema.get("enum") or []) + ([schema["const"]] if "const" in schema else [])
    upper = [v for v in values if isinstance(v, str) and v != v.lower()]
    if upper:
        raise RulesError(
            f"rules.root.properties.{name} allows {_names(upper)}, which can never match: accli lower-cases the "
            "file before it validates, so write allowed values in lower case."
        )


def _check_declarations(declarations, properties: dict) -> dict:
    if not isinstance(declarations, dict):
        raise RulesError(
            "rules.root_schema_declarations is missing or not an object: give "
            '{"time_dimension": "year", "value_dimension": "value", "region_dimension": "region", '
            '"region_layer_map_key": "region_layer"}, naming columns of rules.root.'
        )
    missing = [key for key in DECLARATIONS if not isinstance(declarations.get(key), str) or not declarations[key]]
    if missing:
        raise RulesError(
            f"rules.root_schema_declarations needs {_names(missing)} (each a non-empty text; the first three name "
            "columns of rules.root): accli reads all four."
        )
    for key in COLUMN_DECLARATIONS:
        if declarations[key] not in properties:
            raise RulesError(
                f"rules.root_schema_declarations.{key} is {declarations[key][:100]!r}, which is not a property of "
                f"rules.root; the properties are {_names(properties)}."
            )
    return declarations


def _check_maps(rules: dict, properties: dict, declarations: dict) -> None:
    skipped = (declarations["time_dimension"], declarations["value_dimension"])
    for name in properties:
        values = rules.get(f"map_{name}")
        if name in skipped or values is None:
            continue
        if not isinstance(values, dict):
            raise RulesError(
                f"rules.map_{name} must be an object whose keys are the allowed values of column {name!r}, "
                'e.g. {"world": {}, "europe": {}}.'
            )
        upper = [key for key in values if key != key.lower()]
        if upper:
            raise RulesError(
                f"rules.map_{name} has {_names(upper)}: accli lower-cases the file before it looks values up, "
                "so keys must be lower-case."
            )
    region = declarations["region_dimension"]
    regions = rules.get(f"map_{region}")
    if not isinstance(regions, dict) or not regions:
        raise RulesError(
            f"rules.map_{region} is missing or empty: accli looks up every row's {region!r} there, so list the "
            f'allowed regions with their layer, e.g. {{"world": {{"region_layer": "global"}}}}.'
        )
    bad = [key for key, entry in regions.items() if not isinstance(entry, dict) or "region_layer" not in entry]
    if bad:
        raise RulesError(
            f'rules.map_{region} entries {_names(bad)} need a "region_layer" (accli copies it into each row), '
            f'e.g. {{"{bad[0][:40]}": {{"region_layer": "country"}}}}.'
        )


def _check_template_validators(rules: dict, properties: dict) -> None:
    validators = rules.get("template_validators")
    if validators in (None, "not defined") or validators == {}:
        return
    if not isinstance(validators, dict):
        raise RulesError(
            'rules.template_validators must be an object {column: {condition: [pointer, ...]}} or "not defined".'
        )
    for column, conditions in validators.items():
        where = f"rules.template_validators.{column}"
        if column not in properties:
            raise RulesError(f"{where}: {column!r} is not a property of rules.root; name a column of the file.")
        if not isinstance(conditions, dict) or not conditions:
            raise RulesError(f'{where} must be an object such as {{"value_equals": ["&map_region", "{{region}}"]}}.')
        for condition, pointers in conditions.items():
            if condition not in CONDITIONS:
                raise RulesError(f"{where}.{condition}: the conditions accli knows are {', '.join(CONDITIONS)}.")
            _check_pointers(f"{where}.{condition}", pointers, rules, properties)


def _check_pointers(where: str, pointers, rules: dict, properties: dict) -> None:
    """A pointer list walks the rules: '&key' starts at rules[key], '{column}' steps by the row's value."""
    if not isinstance(pointers, list) or not pointers or not all(isinstance(p, str) for p in pointers):
        raise RulesError(f'{where} must be a list of text pointers, e.g. ["&map_region", "{{region}}", "parent"].')
    if not pointers[0].startswith("&"):
        raise RulesError(f"{where} must start with '&<key of rules>', where accli starts looking; got {pointers[0]!r}.")
    for pointer in pointers:
        if pointer.startswith("&") and pointer[1:] not in rules:
            raise RulesError(f"{where}: {pointer!r} names no key of rules.")
        if pointer.startswith("{") and pointer.endswith("}") and pointer[1:-1] not in properties:
            raise RulesError(f"{where}: {pointer!r} names no property of rules.root.")


# --- reading ---------------------------------------------------------------------------------------
def project_templates(*, project: Project):
    return DatasetTemplate.objects.filter(project=project).select_related("project", "created_by")


def get_template(*, project: Project, slug: str) -> DatasetTemplate:
    template = project_templates(project=project).filter(slug=slug).first()
    if template is None:
        raise NotFound(f"Project '{project.slug}' has no dataset template '{slug}'.")
    return template


def readable_by_slug(*, user, project_slug: str, slug: str) -> DatasetTemplate:
    """The template accli validate asks for: a public one for anyone, a private one for the project's members.

    A private template and a missing one (or a missing project) are answered alike, so slugs are not
    revealed. Anonymous callers get Forbidden, which accli prints with our message (on a 404 it crashes
    without one); signed-in strangers get NotFound like everywhere else in the API.
    """
    template = (
        DatasetTemplate.objects.filter(project__slug=project_slug, slug=slug)
        .select_related("project", "created_by")
        .first()
    )
    if template is not None and (template.public or permissions.has_role(user, template.project, permissions.READ)):
        return template
    if user and user.is_authenticated and template is None:
        project = permissions.visible_projects(user).filter(slug=project_slug).first()
        if project is not None:
            raise NotFound(f"Project '{project_slug}' has no dataset template '{slug}'; check the template slug.")
    # no quotes: accli prints the body as the repr of bytes, which would escape them
    message = (
        f"No public dataset template {slug} in project {project_slug}. accli validate reads templates without "
        "signing in, so a project owner or maintainer must mark the template public (on its page in the web "
        f"client, or with PATCH /api/v1/projects/{project_slug}/dataset-templates/{slug}/ setting public to true). "
        "Otherwise check the project and template slugs."
    )
    if user and user.is_authenticated:
        raise NotFound(message)
    raise Forbidden(message, code="template_not_public")


# --- writing ---------------------------------------------------------------------------------------
def _require_writer(actor, project: Project) -> None:
    if not permissions.has_role(actor, project, permissions.WRITE):
        raise Forbidden(
            f"Only owners and maintainers of project '{project.slug}' can create, change or delete its dataset "
            "templates."
        )


def _check_fields(*, slug=None, name=None, description=None) -> None:
    if slug is not None:
        try:
            slug_validator(slug)
        except Exception:
            raise InvalidInput(f"slug {str(slug)[:100]!r} is not valid: {slug_validator.message}", code="invalid_slug")
        if slug in RESERVED_SLUGS:
            raise InvalidInput(f"slug {slug!r} is reserved by the web pages; choose another.", code="invalid_slug")
    if name is not None and (not name.strip() or len(name) > NAME_MAX):
        raise InvalidInput(f"name must be 1 to {NAME_MAX} characters.", code="invalid_name")
    if description is not None and len(description) > DESCRIPTION_MAX:
        raise InvalidInput(f"description must be at most {DESCRIPTION_MAX} characters.", code="invalid_description")


def _save(template: DatasetTemplate) -> DatasetTemplate:
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise Conflict(
            f"Project '{template.project.slug}' already has a dataset template '{template.slug}'; choose another slug.",
            code="slug_taken",
        ) from None
    return template


def create_template(
    *, project: Project, actor, slug: str, rules, name: str = "", description: str = "", public: bool = False
) -> DatasetTemplate:
    _require_writer(actor, project)
    name = name or slug
    _check_fields(slug=slug, name=name, description=description)
    check_rules(rules)
    template = DatasetTemplate(
        project=project,
        slug=slug,
        name=name,
        description=description,
        rules=rules,
        public=bool(public),
        created_by=actor if actor and actor.is_authenticated else None,
    )
    return _save(template)


_UNSET = object()


def update_template(
    *,
    template: DatasetTemplate,
    actor,
    slug=_UNSET,
    name=_UNSET,
    description=_UNSET,
    rules=_UNSET,
    public=_UNSET,
) -> DatasetTemplate:
    """Change the fields given; the others stay."""
    _require_writer(actor, template.project)
    changes = {
        key: value
        for key, value in {
            "slug": slug,
            "name": name,
            "description": description,
            "rules": rules,
            "public": public,
        }.items()
        if value is not _UNSET
    }
    _check_fields(**{k: v for k, v in changes.items() if k in ("slug", "name", "description")})
    if "rules" in changes:
        check_rules(changes["rules"])
    if "public" in changes:
        changes["public"] = bool(changes["public"])
    for key, value in changes.items():
        setattr(template, key, value)
    return _save(template)


def delete_template(*, template: DatasetTemplate, actor) -> None:
    _require_writer(actor, template.project)
    template.delete()
