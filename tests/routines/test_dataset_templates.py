"""Dataset templates: the rules check, the service, the REST API and who may do what.

alice owns project `demo`, bob is a member, vera a viewer, max a maintainer, charlie a stranger.
"""

import copy
import json

import pytest

from accelerator.errors import Forbidden
from hosting.management.commands.load_demo import DATASET_TEMPLATE
from routines import dataset_templates
from routines.models import DatasetTemplate, Membership, Role

pytestmark = pytest.mark.django_db
RULES = DATASET_TEMPLATE["rules"]
BASE = "/api/v1/projects/demo/dataset-templates/"


@pytest.fixture
def vera(django_user_model, project):
    user = django_user_model.objects.create_user("vera", "vera@example.org", "vera-pass-123")
    Membership.objects.create(project=project, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def max_(django_user_model, project):
    user = django_user_model.objects.create_user("max", "max@example.org", "max-pass-123")
    Membership.objects.create(project=project, user=user, role=Role.MAINTAINER)
    return user


@pytest.fixture
def private(project, alice):
    return dataset_templates.create_template(
        project=project, actor=alice, slug="emissions", name="Emissions", rules=RULES, description="Private."
    )


def rules_with(**changes) -> dict:
    """The demo rules with top-level keys replaced (None removes one)."""
    rules = copy.deepcopy(RULES)
    for key, value in changes.items():
        if value is None:
            rules.pop(key)
        else:
            rules[key] = value
    return rules


def root_with(properties: dict, **extra) -> dict:
    return {"type": "object", "properties": {**RULES["root"]["properties"], **properties}, **extra}


# --- check_rules --------------------------------------------------------------------------------------
def test_the_demo_rules_are_accepted():
    dataset_templates.check_rules(RULES)


DECL = RULES["root_schema_declarations"]
BAD_RULES = [
    ("a list", [], "rules must be a JSON object"),
    ("no root", rules_with(root=None), "rules.root is missing"),
    ("root no schema", rules_with(root={"type": "object", "properties": {"a": {"type": 5}}}), "rules.root.properties"),
    ("bad regex", rules_with(root=root_with({"year": {"type": "string", "pattern": "(["}})), "not a 'regex'"),
    ("no properties", rules_with(root={"type": "object"}), "rules.root.properties must name the CSV columns"),
    ("upper column", rules_with(root=root_with({"Region": {}})), "'Region': accli lower-cases the whole file"),
    ("number type", rules_with(root=root_with({"value": {"type": "number"}})), "reads every CSV cell as text"),
    ("upper enum", rules_with(root=root_with({"unit": {"enum": ["EJ/yr"]}})), "'EJ/yr', which can never match"),
    ("keyword column", rules_with(root=root_with({"type": {}})), "named like a JSON Schema keyword"),
    ("required typo", rules_with(root=root_with({}, required=["regoin"])), "required names 'regoin'"),
    ("no declarations", rules_with(root_schema_declarations=None), "root_schema_declarations is missing"),
    (
        "declaration missing",
        rules_with(root_schema_declarations={k: v for k, v in DECL.items() if k != "region_layer_map_key"}),
        "needs 'region_layer_map_key'",
    ),
    (
        "declaration names no column",
        rules_with(root_schema_declarations={**DECL, "time_dimension": "yaer"}),
        "time_dimension is 'yaer', which is not a property of rules.root",
    ),
    ("no region map", rules_with(map_region=None), "rules.map_region is missing or empty"),
    ("region without layer", rules_with(map_region={"world": {}}), "entries 'world' need a \"region_layer\""),
    ("upper map key", rules_with(map_scenario={"SSP1-19": {}}), "rules.map_scenario has 'SSP1-19'"),
    ("map not object", rules_with(map_model=["image"]), "rules.map_model must be an object"),
    ("validators shape", rules_with(template_validators=[1]), "rules.template_validators must be an object"),
    (
        "unknown condition",
        rules_with(template_validators={"unit": {"equals": ["&map_variable"]}}),
        "the conditions accli knows are value_equals, is_subset_of_map",
    ),
    (
        "pointer start",
        rules_with(template_validators={"unit": {"value_equals": ["map_variable"]}}),
        "must start with '&<key of rules>'",
    ),
    (
        "pointer column",
        rules_with(template_validators={"unit": {"value_equals": ["&map_variable", "{varaible}", "unit"]}}),
        "'{varaible}' names no property",
    ),
]


@pytest.mark.parametrize("rules, message", [pytest.param(r, m, id=i) for i, r, m in BAD_RULES])
def test_rules_the_client_cannot_use_are_refused_with_the_key_named(rules, message):
    with pytest.raises(dataset_templates.RulesError) as refused:
        dataset_templates.check_rules(rules)
    assert message in refused.value.detail


def test_template_validators_may_be_left_out_or_not_defined():
    dataset_templates.check_rules(rules_with(template_validators=None))
    dataset_templates.check_rules(rules_with(template_validators="not defined"))


# --- service ------------------------------------------------------------------------------------------
def test_members_and_viewers_cannot_write_templates(project, bob, vera, private):
    for user in (bob, vera):
        with pytest.raises(Forbidden, match="Only owners and maintainers"):
            dataset_templates.create_template(project=project, actor=user, slug="mine", rules=RULES)
        with pytest.raises(Forbidden):
            dataset_templates.update_template(template=private, actor=user, public=True)
        with pytest.raises(Forbidden):
            dataset_templates.delete_template(template=private, actor=user)
    private.refresh_from_db()
    assert not private.public


def test_a_maintainer_creates_and_changes_templates(project, max_):
    template = dataset_templates.create_template(project=project, actor=max_, slug="ts", rules=RULES)
    assert (template.name, template.public, template.created_by) == ("ts", False, max_)
    dataset_templates.update_template(template=template, actor=max_, public=True, description="Now public.")
    template.refresh_from_db()
    assert template.public and template.description == "Now public." and template.rules == RULES


# --- API: list, create, detail, change, delete ---------------------------------------------------------
def test_owner_creates_a_template_members_and_viewers_read_it(api, alice, bob, vera):
    body = {"slug": "ts", "name": "Timeseries", "description": "IAMC style.", "rules": RULES}
    created = api(alice).post(BASE, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json() | {"created_at": None, "updated_at": None} == {
        "project": "demo",
        "slug": "ts",
        "name": "Timeseries",
        "description": "IAMC style.",
        "public": False,
        "rules": RULES,
        "created_by": "alice",
        "created_at": None,
        "updated_at": None,
    }
    for user in (bob, vera):
        assert [t["slug"] for t in api(user).get(BASE).json()] == ["ts"]
        assert api(user).get(f"{BASE}ts/").json()["rules"] == RULES


def test_strangers_get_404_and_anonymous_callers_401_on_list_and_detail(api, charlie, private):
    for url in (BASE, f"{BASE}emissions/"):
        answer = api(charlie).get(url)
        assert answer.status_code == 404 and "not a member" in answer.json()["detail"]
        assert api(None).get(url).status_code == 401
    assert api(charlie).patch(f"{BASE}emissions/", {"public": True}, format="json").status_code == 404
    assert api(charlie).delete(f"{BASE}emissions/").status_code == 404


def test_a_member_may_not_create_change_or_delete(api, bob, vera, private):
    for user in (bob, vera):
        refused = api(user).post(BASE, {"slug": "mine", "rules": RULES}, format="json")
        assert refused.status_code == 403 and "Only owners and maintainers" in refused.json()["detail"]
        assert api(user).patch(f"{BASE}emissions/", {"public": True}, format="json").status_code == 403
        assert api(user).delete(f"{BASE}emissions/").status_code == 403
    assert DatasetTemplate.objects.filter(public=False).count() == 1


def test_bad_rules_give_400_with_a_detail_that_names_the_key_and_save_nothing(api, alice, project):
    bad = rules_with(map_region={"World": {"region_layer": "global"}})
    refused = api(alice).post(BASE, {"slug": "ts", "rules": bad}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_rules"
    assert "rules.map_region has 'World'" in refused.json()["detail"]
    assert "lower-case" in refused.json()["detail"]
    assert not DatasetTemplate.objects.exists()


def test_bad_slugs_and_taken_slugs_are_refused(api, alice, private):
    assert api(alice).post(BASE, {"slug": "Bad Slug", "rules": RULES}, format="json").json()["code"] == "invalid_slug"
    reserved = api(alice).post(BASE, {"slug": "new", "rules": RULES}, format="json")
    assert reserved.status_code == 400 and "reserved" in reserved.json()["detail"]
    taken = api(alice).post(BASE, {"slug": "emissions", "rules": RULES}, format="json")
    assert taken.status_code == 409 and "already has a dataset template 'emissions'" in taken.json()["detail"]
    missing = api(alice).post(BASE, {"slug": "x"}, format="json")
    assert missing.status_code == 400 and "rules" in missing.json()["detail"]


def test_patch_changes_only_what_it_names_and_refuses_bad_rules(api, alice, private):
    changed = api(alice).patch(f"{BASE}emissions/", {"public": True, "name": "CO2"}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["public"], changed.json()["name"], changed.json()["description"]) == (
        True,
        "CO2",
        "Private.",
    )
    refused = api(alice).patch(f"{BASE}emissions/", {"rules": rules_with(root=None)}, format="json")
    assert refused.status_code == 400 and "rules.root is missing" in refused.json()["detail"]
    private.refresh_from_db()
    assert private.rules == RULES


def test_owner_deletes_a_template(api, alice, private):
    assert api(alice).delete(f"{BASE}emissions/").status_code == 204
    gone = api(alice).get(f"{BASE}emissions/")
    assert gone.status_code == 404 and "has no dataset template 'emissions'" in gone.json()["detail"]


# --- API: by-slug, what accli validate reads ---------------------------------------------------------
def test_anyone_reads_a_public_template_by_slug_without_signing_in(api, alice, private, charlie):
    dataset_templates.update_template(template=private, actor=alice, public=True)
    for client in (api(None), api(charlie)):
        answer = client.get(f"{BASE}emissions/by-slug/")
        assert answer.status_code == 200
        assert answer.json()["rules"] == RULES and answer.json()["slug"] == "emissions"
        assert "created_by" not in answer.json()


def test_members_read_a_private_template_by_slug(api, bob, vera, private):
    for user in (bob, vera):
        assert api(user).get(f"{BASE}emissions/by-slug/").json()["rules"] == RULES


def test_anonymous_private_and_missing_answer_alike_and_say_what_to_do(api, alice, private):
    private_answer = api(None).get(f"{BASE}emissions/by-slug/")
    assert private_answer.status_code == 403
    detail = private_answer.json()["detail"]
    assert "accli validate reads templates without signing in" in detail
    assert "must mark the template public" in detail and "check the project and template slugs" in detail
    assert "'" not in detail and '"' not in detail  # accli shows the body as a bytes repr
    dataset_templates.delete_template(template=private, actor=alice)
    missing_answer = api(None).get(f"{BASE}emissions/by-slug/")
    assert (missing_answer.status_code, missing_answer.json()) == (403, private_answer.json())
    no_project = api(None).get("/api/v1/projects/nowhere/dataset-templates/emissions/by-slug/")
    assert no_project.status_code == 403
    assert no_project.json()["detail"] == detail.replace("project demo", "project nowhere").replace(
        "projects/demo/", "projects/nowhere/"
    )


def test_signed_in_callers_get_404_not_403(api, bob, charlie, private):
    assert api(charlie).get(f"{BASE}emissions/by-slug/").status_code == 404
    missing = api(bob).get(f"{BASE}nothing/by-slug/")
    assert missing.status_code == 404 and "has no dataset template 'nothing'" in missing.json()["detail"]


# --- schema and admin ----------------------------------------------------------------------------------
def test_the_schema_documents_the_endpoints_and_the_anonymous_read(api, alice):
    schema = api(alice).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert set(paths["/api/v1/projects/{slug}/dataset-templates/"]) == {"get", "post"}
    assert set(paths["/api/v1/projects/{slug}/dataset-templates/{template_slug}/"]) == {"get", "patch", "delete"}
    by_slug = paths["/api/v1/projects/{slug}/dataset-templates/{template_slug}/by-slug/"]["get"]
    assert {"200", "401", "403", "404"} <= set(by_slug["responses"])
    assert {} in by_slug["security"]  # no credentials needed
    create = paths["/api/v1/projects/{slug}/dataset-templates/"]["post"]
    assert {"201", "400", "403", "409"} <= set(create["responses"])


def test_the_admin_refuses_rules_the_client_cannot_use(client, django_user_model, project):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "root-pass-123")
    client.force_login(admin)
    form = {"project": project.pk, "slug": "ts", "name": "TS", "description": "", "rules": '{"root": {}}'}
    refused = client.post("/admin/routines/datasettemplate/add/", form)
    assert refused.status_code == 200 and b"rules.root.properties must name the CSV columns" in refused.content
    saved = client.post("/admin/routines/datasettemplate/add/", {**form, "rules": json.dumps(RULES), "public": "on"})
    assert saved.status_code == 302
    assert DatasetTemplate.objects.get(slug="ts").public
    assert DatasetTemplate.objects.get(slug="ts").created_by == admin
    page = client.get(f"/admin/routines/datasettemplate/{DatasetTemplate.objects.get(slug='ts').pk}/change/")
    assert b"&quot;region_layer_map_key&quot;: &quot;region_layer&quot;" in page.content
