"""Dataset template pages: the list from the project page, one template's rules made readable, the editor."""

import json
import re

import pytest

from hosting.management.commands.load_demo import DATASET_TEMPLATE
from routines import dataset_templates
from routines.models import DatasetTemplate

pytestmark = pytest.mark.django_db
RULES = DATASET_TEMPLATE["rules"]
LIST = "/projects/demo/dataset-templates/"
PAGE = "/projects/demo/dataset-templates/regional-timeseries/"


@pytest.fixture
def template(project, alice):
    return dataset_templates.create_template(project=project, actor=alice, **DATASET_TEMPLATE)


def form(**changes) -> dict:
    data = {"slug": "ts", "name": "Timeseries", "description": "", "rules": json.dumps(RULES)}
    return {**data, **changes}


def test_the_project_page_links_the_templates_and_the_list_links_each(signed_in, bob, template):
    client = signed_in(bob)
    assert f'href="{LIST}"' in client.get("/projects/demo/").content.decode()
    listing = client.get(LIST).content.decode()
    assert f'href="{PAGE}"' in listing and "Regional timeseries (IAMC style)" in listing
    assert "members only" in listing and 'id="new-template"' not in listing  # bob is a member, not a maintainer


def test_the_page_shows_columns_declarations_allowed_values_and_the_raw_rules(signed_in, bob, template):
    page = signed_in(bob).get(PAGE).content.decode()
    assert "accli validate demo regional-timeseries file.csv -s http://testserver" in page
    assert "model,scenario,region,variable,unit,year,value" in page
    assert '<tr data-column="year">' in page and "time dimension" in page and "^(19|20|21)[0-9]{2}$" in page
    assert "<td>region_layer_map_key</td><td><code>region_layer</code></td>" in page
    assert 'id="map_region"' in page and "<td><code>r5asia</code></td><td>r5</td>" in page
    assert "13 in map_region" in page
    assert 'id="template-validators"' in page and "map_variable → {variable} → unit" in page
    raw = page.split('id="rules-json">')[1].split("</pre>")[0]
    assert "&quot;region_dimension&quot;: &quot;region&quot;" in raw
    assert "does not apply the JSON Schema of the columns" in page
    assert 'id="toggle-public"' not in page and 'id="edit-template"' not in page
    # the site's CSP runs no inline script or style: the page needs none
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page and "<style" not in page


def test_names_descriptions_and_rules_are_shown_as_text_never_as_html(signed_in, alice, project):
    rules = json.loads(json.dumps(RULES))
    rules["map_region"]["<img src=x onerror=alert(2)>"] = {"region_layer": "<b>bold</b>"}
    dataset_templates.create_template(
        project=project,
        actor=alice,
        slug="xss",
        name="<script>alert(1)</script>",
        description="<script>alert('d')</script>",
        rules=rules,
    )
    client = signed_in(alice)
    for url in ("/projects/demo/dataset-templates/xss/", LIST, "/projects/demo/dataset-templates/xss/edit/"):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold" not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url
    page = client.get("/projects/demo/dataset-templates/xss/").content.decode()
    assert "&lt;img src=x onerror=alert(2)&gt;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_strangers_get_404_and_members_cannot_edit(signed_in, charlie, bob, template):
    assert signed_in(charlie).get(PAGE).status_code == 404
    assert signed_in(charlie).get(LIST).status_code == 404
    client = signed_in(bob)
    refused = client.get(f"{PAGE}edit/")
    assert refused.status_code == 403 and "this needs &#x27;maintainer&#x27; or higher" in refused.content.decode()
    assert client.post(f"{PAGE}public/", {"public": "on"}).status_code == 403
    assert client.post("/projects/demo/dataset-templates/new/", form()).status_code == 403
    assert not DatasetTemplate.objects.get(slug="regional-timeseries").public


def test_an_owner_creates_a_template_from_the_form(signed_in, alice, project):
    client = signed_in(alice)
    assert (
        "&quot;root_schema_declarations&quot;" in client.get("/projects/demo/dataset-templates/new/").content.decode()
    )
    created = client.post("/projects/demo/dataset-templates/new/", form(public="on"))
    assert created.status_code == 302 and created["Location"] == "/projects/demo/dataset-templates/ts/"
    template = DatasetTemplate.objects.get(slug="ts")
    assert template.rules == RULES and template.public and template.created_by == alice


def test_the_form_shows_each_message_at_its_field_and_saves_nothing(signed_in, alice, template):
    client = signed_in(alice)
    bad_json = client.post("/projects/demo/dataset-templates/new/", form(rules='{"root": '))
    assert bad_json.status_code == 400
    assert 'data-for="rules">The rules are not valid JSON: Expecting value at line 1' in bad_json.content.decode()
    bad_rules = client.post(
        "/projects/demo/dataset-templates/new/", form(rules=json.dumps({**RULES, "map_region": {}}))
    )
    assert bad_rules.status_code == 400 and "rules.map_region is missing or empty" in bad_rules.content.decode()
    taken = client.post("/projects/demo/dataset-templates/new/", form(slug="regional-timeseries"))
    assert taken.status_code == 400
    assert 'data-for="slug">Project &#x27;demo&#x27; already has a dataset template' in taken.content.decode()
    assert list(DatasetTemplate.objects.values_list("slug", flat=True)) == ["regional-timeseries"]


def test_an_owner_edits_toggles_public_and_deletes(signed_in, alice, template):
    client = signed_in(alice)
    edit = client.get(f"{PAGE}edit/").content.decode()
    assert "&quot;region_layer_map_key&quot;: &quot;region_layer&quot;" in edit
    saved = client.post(f"{PAGE}edit/", form(slug="regional-timeseries", name="Renamed", description="New text."))
    assert saved.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.description, template.public) == ("Renamed", "New text.", False)

    page = client.get(PAGE).content.decode()
    assert "Make it public" in page and "cannot use this one until it is public" in page
    assert client.post(f"{PAGE}public/", {"public": "on"}).status_code == 302
    assert DatasetTemplate.objects.get(pk=template.pk).public
    assert "Make it members only" in client.get(PAGE).content.decode()
    client.post(f"{PAGE}public/", {})
    assert not DatasetTemplate.objects.get(pk=template.pk).public

    assert client.post(f"{PAGE}delete/").status_code == 302
    assert not DatasetTemplate.objects.exists()
    assert client.get(PAGE).status_code == 404
