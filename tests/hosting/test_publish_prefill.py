"""Publishing from a routine's page or a jobflow run: the publish form opens pre-filled, for those who may publish
it; the manage page offers the embed snippet only once an embed origin is set; the schemas are edited with the
schema editor and tables that post what the server validates."""

import re

import pytest
from django.test import Client

from hosting import services as hosting
from hosting.models import HostedModel
from jobflows.services import dispatch_flow
from jobs.models import Job
from routines.models import Membership, Project, Role
from tests.hosting.conftest import publish, square_routine

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):
    root = tmp_path / "storage"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def flow_run(project, user):
    def node(key):
        return {"id": key, "name": key, "job_kwargs": {"docker_image": "busybox", "command": "true"}}

    body = {"format": "acc-dag/1", "name": "Two steps", "nodes": [node("a"), node("b")], "edges": [["a", "b"]]}
    return dispatch_flow(project=project, user=user, body=body)


def selected(page: str, select_id: str) -> str:
    block = page.split(f'id="{select_id}"')[1].split("</select>")[0]
    found = re.search(r'<option value="([^"]*)"[^>]*selected', block)
    return found.group(1) if found else ""


def test_the_routine_page_links_publish_for_members_only(project, alice, bob, django_user_model):
    routine = square_routine(project, alice)
    for user in (alice, bob):
        page = client_of(user).get(f"/routines/{routine.pk}/").content.decode()
        assert f'href="/hosted/new/?routine={routine.pk}"' in page and "Publish as hosted model" in page
    viewer = django_user_model.objects.create_user("vera", password="x")
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    assert "Publish as hosted model" not in client_of(viewer).get(f"/routines/{routine.pk}/").content.decode()


def test_publish_opens_with_the_routine_asked_for(project, alice):
    square_routine(project, alice, name="first")
    routine = square_routine(project, alice, name="second-one")
    page = client_of(alice).get(f"/hosted/new/?routine={routine.pk}").content.decode()
    assert selected(page, "publish-routine") == str(routine.pk)
    assert 'value="Second one"' in page and 'value="second-one"' in page
    assert 'id="prefill-notice"' not in page


def test_a_routine_the_viewer_may_not_publish_is_not_chosen_and_the_page_says_so(project, alice, carol):
    routine = square_routine(project, alice)
    other = Project.objects.create(slug="mine", name="Mine")
    Membership.objects.create(project=other, user=carol, role=Role.OWNER)
    square_routine(other, carol, name="own")
    page = client_of(carol).get(f"/hosted/new/?routine={routine.pk}").content.decode()
    assert f'value="{routine.pk}"' not in page, "another project's routine is never offered"
    assert "cannot be published from here" in page.split('id="prefill-notice"')[1]


def test_publish_opens_with_the_jobflow_run_asked_for_and_publishes_it(project, alice):
    root = flow_run(project, alice)
    client = client_of(alice)
    page = client.get(f"/hosted/new/?run={root.pk}").content.decode()
    assert f'name="jobflow" inputmode="numeric" value="{root.pk}"' in page
    assert selected(page, "publish-routine") == "" and selected(page, "publish-project") == "demo"
    assert f'href="/jobs/{root.pk}/"' in page.split('id="prefill-run"')[1]
    assert 'value="two-steps"' in page

    form = {
        "project": "demo",
        "routine": "",
        "jobflow": str(root.pk),
        "title": "Two steps",
        "slug": "two-steps",
        "policy": "private",
        "conf_schema": "",
        "inputs_schema": "[]",
        "secrets_schema": "",
        "outputs": '[{"path": "/code/out/", "name": "results", "node": "b"}]',
    }
    response = client.post("/hosted/new/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    model = HostedModel.objects.get(slug="two-steps")
    assert model.kind == "jobflow" and model.default_version.outputs == [
        {"path": "/code/out/", "name": "results", "node": "b"}
    ]


def test_a_run_the_viewer_may_not_read_or_that_is_no_jobflow_is_refused_alike(project, alice, carol):
    root = flow_run(project, alice)
    other = Project.objects.create(slug="mine", name="Mine")
    Membership.objects.create(project=other, user=carol, role=Role.OWNER)
    node = Job.objects.filter(flow_run__root_id=root.pk).exclude(pk=root.pk).first()
    assert node is not None
    for user, asked in ((carol, root.pk), (alice, 99999999), (alice, "x1"), (alice, node.pk)):
        page = client_of(user).get(f"/hosted/new/?run={asked}").content.decode()
        assert "cannot be published from here" in page.split('id="prefill-notice"')[1], (user, asked)
        assert 'id="prefill-run"' not in page


def test_the_schema_fields_are_a_schema_editor_and_tables_that_post_the_same_json(project, alice):
    square_routine(project, alice)
    page = client_of(alice).get("/hosted/new/").content.decode()
    conf = page.split('id="publish-conf-schema"')[1].split(">")[0]
    assert "data-schema-editor" in conf and 'data-preview="publish-conf-preview"' in conf
    secrets = page.split('id="publish-secrets-schema"')[1].split(">")[0]
    assert "data-schema-editor" in secrets
    assert 'data-table-editor="inputs"' in page.split('id="publish-inputs-schema"')[1].split(">")[0]
    assert 'data-table-editor="outputs"' in page.split('id="publish-outputs"')[1].split(">")[0]
    assert "js/schema_editor.js" in page and "vendor/codemirror/lib/codemirror.js" in page


def test_the_embed_snippet_is_offered_only_once_an_embed_origin_is_set(project, alice):
    model = publish(alice, square_routine(project, alice))
    client = client_of(alice)
    page = client.get("/hosted/square/manage/").content.decode()
    assert 'id="widget-snippet"' not in page and "<iframe" not in page and 'id="no-embed"' in page
    hosting.update_model(model=model, user=alice, data={"embed_origins": "https://portal.example.org"})
    page = client.get("/hosted/square/manage/").content.decode()
    assert 'id="widget-snippet"' in page and "&lt;iframe src=" in page and "https://portal.example.org" in page
