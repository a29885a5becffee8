"""The hosting pages: who sees which page under each policy, the launch form, the widget's framing rules,
the manage page, and launching a hosted model from the file explorer."""

import io
import json
import re
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accelerator.crypto import decrypt_json
from files import services as files
from hosting import access
from hosting import services as hosting
from hosting.models import HostedModel, HostedRun
from jobs.models import Job
from tests.hosting.conftest import publish, square_routine, write

pytestmark = pytest.mark.django_db

USERS = ("alice", "bob", "carol", "dave")
# What hosting/access.py grants under each policy. dave presents a valid link token on every request.
MAY_VIEW = {
    "private": {"alice"},
    "project": {"alice", "bob"},
    "public": {"alice", "bob", "carol", "dave"},
    "link": {"alice", "dave"},
}
# The catalog lists what one may see without a link.
LISTED = {**MAY_VIEW, "link": {"alice"}}
PAGES = ("", "manage/", "widget/")


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):
    root = tmp_path / "storage"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


@pytest.fixture
def cast(alice, bob, carol, dave, project):
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave}


@pytest.fixture
def routine(project, alice):
    return square_routine(project, alice)


@pytest.fixture
def square(routine, alice):
    return publish(alice, routine)


def client_of(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def normalised(response, slug: str) -> str:
    """The page without what differs between two renderings (CSRF tokens) and without the slug asked for."""
    text = response.content.decode()
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
    return text.replace(slug, "SLUG")


def editor_config(response) -> dict:
    match = re.search(r'<script id="editor-config" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "the page must carry the launch form's editor configuration"
    return json.loads(match.group(1))


def launch(client, slug, conf, *, path=None, **fields):
    return client.post(path or f"/hosted/{slug}/", {"conf_json": json.dumps(conf), **fields})


# --- who sees which page ------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["private", "project", "public", "link"])
def test_each_page_is_allowed_or_refused_as_access_says_and_a_refusal_reveals_nothing(policy, cast, routine, alice):
    slug, portal = f"m-{policy}", ["https://portal.example.org"]
    publish(alice, routine, slug=slug, policy=policy, embed_origins=portal)
    tokens = {}
    for other in ("private", "project", "public", "link"):  # every model has a link; only `link` honours it
        if other != policy:
            publish(alice, routine, slug=f"m-{other}", policy=other, embed_origins=portal)
        tokens[f"m-{other}"] = hosting.rotate_link(model=HostedModel.objects.get(slug=f"m-{other}"), user=alice)

    for name in USERS:
        client = client_of(cast[name])
        query = f"?token={tokens[slug]}" if name == "dave" else ""
        for page in PAGES:
            response = client.get(f"/hosted/{slug}/{page}{query}")
            if page == "manage/":
                expected = 200 if name == "alice" else 403 if name in MAY_VIEW[policy] else 404
            else:
                expected = 200 if name in MAY_VIEW[policy] else 404
            assert response.status_code == expected, (name, page)
            if expected == 404:
                missing = client.get(f"/hosted/no-such-model/{page}{query}")
                assert missing.status_code == 404
                assert normalised(response, slug) == normalised(missing, "no-such-model"), (name, page)
                assert response.get("Content-Security-Policy") == missing.get("Content-Security-Policy")
                assert response.get("X-Frame-Options") == missing.get("X-Frame-Options")
        listed = client.get("/hosted/").content.decode()
        assert (f'data-slug="{slug}"' in listed) == (name in LISTED[policy]), name


def test_anonymous_visitors_are_sent_to_sign_in_with_the_link_token_kept(square):
    token = hosting.rotate_link(model=square, user=square.author)
    anonymous = client_of(None)
    for path in ("/hosted/", "/hosted/new/", "/hosted/square/", "/hosted/no-such-model/"):
        for page in ("", "manage/", "widget/", "widget/runs/1/") if path != "/hosted/" else ("",):
            if path == "/hosted/new/" and page:
                continue
            target = f"{path}{page}?token={token}"
            response = anonymous.get(target)
            assert response.status_code == 302, target
            assert response["Location"] == f"/accounts/login/?next={quote(target)}", target
    assert anonymous.post("/hosted/square/", {"conf_json": "{}"}).status_code == 302
    assert not Job.objects.exists()


def test_a_link_token_is_remembered_for_its_model_until_the_author_replaces_it(routine, alice, dave):
    model = publish(alice, routine, policy="link")
    token = access.link_token_of(model)
    client = client_of(dave)
    assert client.get("/hosted/square/").status_code == 404
    assert client.get("/hosted/square/?token=wrong-token").status_code == 404
    assert client.get(f"/hosted/square/?token={token}").status_code == 200
    assert client.get("/hosted/square/").status_code == 200  # remembered in the session
    response = launch(client, "square", {"n": 3})
    assert response.status_code == 302
    assert HostedRun.objects.get().via == "link"

    hosting.rotate_link(model=model, user=alice)
    gone = client.get("/hosted/square/")
    assert gone.status_code == 404 and "may have been revoked or replaced" in gone.content.decode()


# --- the widget may be framed by the listed portals only ------------------------------------------
def test_the_widget_may_be_framed_by_its_embed_origins_and_nothing_else_may(routine, alice, carol):
    publish(alice, routine, embed_origins=["https://portal.example.org", "http://127.0.0.1:8123"])
    client = client_of(carol)
    widget = client.get("/hosted/square/widget/")
    assert widget.status_code == 200
    assert frame_ancestors(widget) == "'self' http://127.0.0.1:8123 https://portal.example.org"
    assert "X-Frame-Options" not in widget
    assert 'class="topbar"' not in widget.content.decode()

    launched = launch(client, "square", {"n": 2}, path="/hosted/square/widget/")
    run = HostedRun.objects.get()
    assert launched.status_code == 302 and launched["Location"] == f"/hosted/square/widget/runs/{run.pk}/"
    assert run.via == "widget"
    status = client.get(launched["Location"])
    assert status.status_code == 200 and "run-status" in status.content.decode()
    assert status["Content-Security-Policy"] == widget["Content-Security-Policy"]

    for path in ("/hosted/", "/hosted/square/", "/hosted/square/manage/", "/projects/demo/files/"):
        response = client_of(alice).get(path)
        assert response.status_code == 200, path
        assert response["X-Frame-Options"] == "DENY" and frame_ancestors(response) == "'none'", path


def frame_ancestors(response) -> str:
    """The frame-ancestors sources of a response's Content-Security-Policy (the rest is the platform's policy)."""
    for directive in response["Content-Security-Policy"].split(";"):
        name, _, sources = directive.strip().partition(" ")
        if name == "frame-ancestors":
            return sources
    return ""


def test_the_widget_shows_a_run_to_its_launcher_only_and_for_good(square, carol, alice, bob):
    launch(client_of(carol), "square", {"n": 2}, path="/hosted/square/widget/")
    run = HostedRun.objects.get()
    assert client_of(carol).get(f"/hosted/square/widget/runs/{run.pk}/").status_code == 200
    for other in (alice, bob):  # the author sees that the run exists on the manage page, not what it brought
        response = client_of(other).get(f"/hosted/square/widget/runs/{run.pk}/")
        assert response.status_code == 404 and "not yours" in response.content.decode()
    hosting.update_model(model=square, user=alice, data={"policy": "private"})
    assert client_of(carol).get("/hosted/square/widget/").status_code == 404
    assert client_of(carol).get(f"/hosted/square/widget/runs/{run.pk}/").status_code == 200


# --- the model page ---------------------------------------------------------------------------------
def test_the_description_is_markdown_without_raw_html(routine, alice, carol):
    description = (
        "# Squares\n\nGives **n²**.\n\n<script>alert('x')</script>\n<img src=x onerror=\"alert('y')\">\n\n"
        "[docs](javascript:alert('z'))\n\n| n | n² |\n|---|---|\n| 7 | 49 |\n"
    )
    publish(alice, routine, description=description)
    text = client_of(carol).get("/hosted/square/").content.decode()
    assert "<h1>Squares</h1>" in text and "<strong>n²</strong>" in text and "<td>49</td>" in text
    assert "<script>alert" not in text and "<img" not in text and "javascript:" not in text
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in text, "raw HTML is shown as the text it is"
    card = client_of(carol).get("/hosted/").content.decode()
    assert "Gives n²." in card and "<script>alert" not in card


def test_the_page_shows_versions_the_form_and_your_runs(square, carol, dave):
    hosting.add_version(model=square, user=square.author, data={"notes": "faster"})
    response = client_of(carol).get("/hosted/square/")
    text = response.content.decode()
    assert response.status_code == 200
    assert 'data-version="2"' in text and 'data-version="1"' in text and "faster" in text
    config = editor_config(response)
    assert config["schema"]["properties"]["n"]["minimum"] == 0 and config["errors"] == {}
    assert 'name="input_data"' in text and 'name="upload_data"' in text
    assert 'type="password" id="secret-API_TOKEN" name="secret_API_TOKEN"' in text
    assert 'name="version" value="2"' in text  # the default

    assert launch(client_of(carol), "square", {"n": 3}, version="2").status_code == 302
    launch(client_of(dave), "square", {"n": 4})
    runs = client_of(carol).get("/hosted/square/").content.decode().split('id="your-runs"')[1]
    [mine] = HostedRun.objects.filter(user=carol)
    assert f"/jobs/{mine.job_id}/" in runs and runs.count("data-run=") == 1


def test_a_conf_that_breaks_the_schema_is_refused_next_to_its_field_and_starts_nothing(square, carol):
    response = launch(client_of(carol), "square", {"n": -1}, secret_API_TOKEN="s3cr3t-value")
    assert response.status_code == 400
    config = editor_config(response)
    assert list(config["errors"]) == ["root.n"] and "minimum of 0" in config["errors"]["root.n"][0]
    assert config["startval"] == {"n": -1}
    assert "s3cr3t-value" not in response.content.decode()
    assert not Job.objects.exists() and not HostedRun.objects.exists()


def test_a_password_field_of_the_conf_schema_is_never_quoted_back(routine, alice, carol):
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "KEY": {"type": "string", "format": "password", "minLength": 20}},
    }
    publish(alice, routine, conf_schema=schema)
    response = launch(client_of(carol), "square", {"n": 1, "KEY": "short-secret"})
    assert response.status_code == 400
    assert editor_config(response)["errors"] == {"root.KEY": ["Not valid here (the value is not shown)."]}
    assert "short-secret" not in response.content.decode()
    assert "KEY" not in editor_config(response)["startval"]


def test_a_wrong_input_is_refused_next_to_that_input(square, carol):
    response = launch(client_of(carol), "square", {"n": 1}, input_data="nowhere/data.txt")
    assert response.status_code == 400
    field = response.content.decode().split('data-name="data"')[1].split("</fieldset>")[0]
    assert "does not exist" in field
    assert not Job.objects.exists()


def test_a_launch_runs_in_the_launchers_area_with_secrets_kept_apart(square, carol):
    response = launch(client_of(carol), "square", {"n": 7}, secret_API_TOKEN="tok-123")
    run = HostedRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{run.job_id}/"
    assert run.user == carol and run.project == hosting.home_project(carol) and run.via == "form"
    assert run.job.conf["n"] == "7" and "API_TOKEN" not in run.job.conf
    assert decrypt_json(run.job.secrets_encrypted) == {"API_TOKEN": "tok-123"}


def test_an_uploaded_input_is_stored_in_the_launchers_area_and_handed_to_the_run(square, carol):
    upload = SimpleUploadedFile("my data.txt", b"carol's line\n")
    response = launch(client_of(carol), "square", {"n": 2}, upload_data=upload)
    assert response.status_code == 302
    run = HostedRun.objects.get()
    assert re.fullmatch(r"hosted/square/uploads/[0-9a-f]{16}/my data\.txt", run.inputs["data"])
    with files.open_file(project=run.project, relpath=run.inputs["data"]) as fh:
        assert fh.read() == b"carol's line\n"
    assert f"acc://{run.project.slug}/{run.inputs['data']}:/code/in/data.txt" in run.job.conf["input_mappings"]


def test_a_refused_launch_leaves_no_upload_behind(square, carol, storage_root):
    upload = SimpleUploadedFile("data.txt", b"uploaded\n")
    response = launch(client_of(carol), "square", {"n": 1}, upload_data=upload, selected=["missing.txt"])
    assert response.status_code == 400
    assert "does not exist" in response.content.decode().split('id="selection"')[1]
    assert [p for p in storage_root.rglob("*") if p.is_file()] == []
    assert not Job.objects.exists()


def test_a_deprecated_version_warns_and_names_its_successor(square, carol):
    hosting.add_version(model=square, user=square.author, data={})
    hosting.set_version_status(model=square, user=square.author, number=1, status="deprecated")
    client = client_of(carol)
    assert "is deprecated" not in client.get("/hosted/square/").content.decode()
    old = client.get("/hosted/square/?version=1").content.decode()
    assert "Version 1 is deprecated; use version 2." in old and 'name="version" value="1"' in old
    assert launch(client, "square", {"n": 1}, version="1").status_code == 302
    assert HostedRun.objects.get().version.number == 1


def test_launching_an_archived_version_is_refused_with_a_clear_message(square, carol):
    hosting.add_version(model=square, user=square.author, data={})
    hosting.set_version_status(model=square, user=square.author, number=1, status="archived")
    client = client_of(carol)
    response = launch(client, "square", {"n": 1}, version="1")
    message = "Version 1 of &#x27;square&#x27; is archived and can no longer be launched. Launch version 2 instead."
    assert response.status_code == 400 and message in response.content.decode()
    assert not Job.objects.exists() and not HostedRun.objects.exists()
    page = client.get("/hosted/square/?version=1").content.decode()
    assert message in page and 'name="version" value="2"' in page
    assert '<option value="1"' not in page  # archived versions are not offered


def test_someone_it_is_shared_with_for_viewing_sees_it_but_cannot_launch(routine, alice, carol):
    model = publish(alice, routine, policy="private")
    hosting.set_share(model=model, user=alice, username="carol", launch=False)
    client = client_of(carol)
    page = client.get("/hosted/square/").content.decode()
    assert "You may see this model but not launch it" in page and 'id="run-form"' not in page
    assert launch(client, "square", {"n": 1}).status_code == 403
    hosting.set_share(model=model, user=alice, username="carol", launch=True)
    assert 'id="run-form"' in client.get("/hosted/square/").content.decode()
    assert launch(client, "square", {"n": 1}).status_code == 302


# --- the catalog ---------------------------------------------------------------------------------------
def test_the_catalog_searches_titles_and_descriptions_and_filters_by_tag(routine, alice, carol):
    publish(alice, routine, slug="square", title="Square a number", tags=["maths"])
    publish(alice, routine, slug="crops", title="Crop yield", description="Yields per **hectare**.", tags=["farm"])
    client = client_of(carol)

    def listed(query):
        return re.findall(r'data-slug="([^"]+)"', client.get(f"/hosted/{query}").content.decode())

    assert listed("") == ["crops", "square"]
    assert listed("?q=square") == ["square"]
    assert listed("?q=hectare") == ["crops"]
    assert listed("?tag=farm") == ["crops"]
    assert listed("?q=square&tag=farm") == []
    assert 'href="/hosted/new/"' in client.get("/hosted/").content.decode()


# --- publishing ---------------------------------------------------------------------------------------
def publish_form(source, **fields):
    return {
        "project": "demo",
        "routine": str(source.pk),
        "title": "Square it",
        "slug": "square-it",
        "description": "Squares *n*.",
        "tags": "maths, demo",
        "policy": "public",
        "conf_schema": "",
        "inputs_schema": "[]",
        "secrets_schema": "",
        "outputs": '[{"path": "/code/out/", "name": "results"}]',
        "embed_origins": "",
        **fields,
    }


def test_publishing_prefills_the_routines_schema_and_opens_the_new_model(routine, alice):
    client = client_of(alice)
    page = client.get("/hosted/new/").content.decode()
    assert f'<option value="{routine.pk}" data-project="demo" selected>square (v1)</option>' in page
    assert "&quot;minimum&quot;: 0" in page  # the routine's conf schema, to edit

    response = client.post("/hosted/new/", publish_form(routine))
    assert response.status_code == 302 and response["Location"] == "/hosted/square-it/"
    model = HostedModel.objects.get()
    assert model.policy == "public" and model.tags == ["demo", "maths"] and model.author == alice
    assert model.default_version.conf_schema["required"] == ["n"]
    assert model.default_version.outputs == [{"path": "/code/out/", "name": "results"}]
    assert "Published" in client.get(response["Location"]).content.decode()


def test_publishing_errors_show_next_to_their_field_and_create_nothing(routine, alice, carol):
    client = client_of(alice)
    cases = [
        ({"inputs_schema": "[{"}, "publish-inputs-schema", "Not valid JSON"),
        ({"inputs_schema": '[{"name": "x", "target": "rel/path"}]'}, "publish-inputs-schema", "absolute"),
        ({"conf_schema": '{"type": "array"}'}, "publish-conf-schema", "must describe an object"),
        ({"slug": "Not A Slug"}, "publish-slug", "lower-case"),
        ({"slug": "new"}, "publish-slug", "reserved"),
        ({"embed_origins": "portal.example.org"}, "publish-origins", "origins like"),
        ({"routine": ""}, "publish-routine", "Choose a routine"),
    ]
    for fields, field, message in cases:
        response = client.post("/hosted/new/", publish_form(routine, **fields))
        assert response.status_code == 400, fields
        after_field = response.content.decode().split(f'id="{field}"')[1]
        assert message in after_field.split("<label")[0], (fields, message)
    publish(alice, routine, slug="square-it")
    taken = client.post("/hosted/new/", publish_form(routine))
    assert taken.status_code == 400 and "exists already" in taken.content.decode().split('id="publish-slug"')[1]
    outsider = client_of(carol).post("/hosted/new/", publish_form(routine, slug="mine"))
    assert outsider.status_code == 400 and "not a member" in outsider.content.decode()
    assert HostedModel.objects.count() == 1


# --- managing -----------------------------------------------------------------------------------------
def test_the_author_edits_settings_issues_and_revokes_the_link_and_shares(square, alice, carol, dave):
    client = client_of(alice)
    edit = {"action": "edit", "title": "Squares", "description": "New.", "tags": "maths", "policy": "link"}
    response = client.post("/hosted/square/manage/", {**edit, "embed_origins": "https://portal.example.org"})
    assert response.status_code == 302
    square.refresh_from_db()
    assert (
        square.title == "Squares" and square.policy == "link" and square.embed_origins == ["https://portal.example.org"]
    )
    page = client.get("/hosted/square/manage/").content.decode()
    token = access.link_token_of(square)
    assert f"http://testserver/hosted/square/?token={token}" in page
    assert f"/hosted/square/widget/?token={token}" in page
    assert client_of(dave).get(f"/hosted/square/?token={token}").status_code == 200

    client.post("/hosted/square/manage/", {"action": "rotate"})
    assert client_of(dave).get(f"/hosted/square/?token={token}").status_code == 404
    client.post("/hosted/square/manage/", {"action": "revoke"})
    assert 'id="no-link"' in client.get("/hosted/square/manage/").content.decode()

    bad = client.post("/hosted/square/manage/", {**edit, "embed_origins": "not an origin"})
    assert bad.status_code == 400 and "origins like" in bad.content.decode().split('id="edit-origins"')[1]

    client.post("/hosted/square/manage/", {"action": "share", "username": "carol", "launch": "on"})
    assert client_of(carol).get("/hosted/square/").status_code == 200
    nobody = client.post("/hosted/square/manage/", {"action": "share", "username": "nobody"})
    assert nobody.status_code == 400 and "There is no user &#x27;nobody&#x27;" in nobody.content.decode()
    client.post("/hosted/square/manage/", {"action": "unshare", "username": "carol"})
    assert client_of(carol).get("/hosted/square/").status_code == 404


def test_the_author_publishes_a_version_deprecates_and_archives_on_the_manage_page(square, alice, carol):
    client = client_of(alice)
    page = client.get("/hosted/square/manage/").content.decode()
    assert "&quot;minimum&quot;: 0" in page.split('id="version-conf-schema"')[1]  # prefilled from the default
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10}}, "required": ["n"]}
    fields = {"conf_schema": json.dumps(schema), "inputs_schema": "[]", "outputs": "[]", "secrets_schema": ""}
    response = client.post("/hosted/square/manage/", {"action": "version", **fields, "make_default": "on"})
    assert response.status_code == 302
    square.refresh_from_db()
    assert square.default_version.number == 2 and square.default_version.conf_schema == schema

    client.post("/hosted/square/manage/", {"action": "status", "number": "1", "status": "deprecated"})
    assert square.versions.get(number=1).successor.number == 2
    assert (
        "Version 1 is deprecated; use version 2." in client_of(carol).get("/hosted/square/?version=1").content.decode()
    )
    itself = client.post(
        "/hosted/square/manage/", {"action": "status", "number": "1", "status": "archived", "successor": "1"}
    )
    assert itself.status_code == 400 and "successor must be another version" in itself.content.decode()
    client.post("/hosted/square/manage/", {"action": "status", "number": "1", "status": "archived"})
    assert square.versions.get(number=1).status == "archived"
    assert launch(client_of(carol), "square", {"n": 1}, version="1").status_code == 400


def test_the_author_sees_every_run_but_not_what_the_launcher_brought(square, alice, carol):
    home = hosting.home_project(carol)
    write(home, "private/carol-data.txt", b"carol only\n")
    client = client_of(carol)
    response = launch(client, "square", {"n": 5}, input_data="private/carol-data.txt", secret_API_TOKEN="tok-999")
    assert response.status_code == 302
    run = HostedRun.objects.get()

    page = client_of(alice).get("/hosted/square/manage/").content.decode()
    runs = page.split('id="all-runs"')[1]
    assert f'data-run="{run.pk}"' in runs and "carol" in runs and "v1" in runs and "QUEUED" in runs
    for private in ("carol-data.txt", home.slug, "tok-999", f"/jobs/{run.job_id}/", "square=", '"n"'):
        assert private not in runs, private
    assert 'id="usage-runs">1<' in page
    assert client_of(alice).get(f"/jobs/{run.job_id}/").status_code == 404


# --- from the file explorer -----------------------------------------------------------------------------
def test_the_explorer_offers_hosted_models_and_launches_one_on_the_selection(square, routine, alice, bob):
    write(square.project, "data/a.txt", b"a\n")
    private = publish(alice, routine, slug="alices-own", policy="private")
    client = client_of(bob)
    explorer = client.get("/projects/demo/files/data").content.decode()
    assert '<option value="hosted:square">Square a number</option>' in explorer
    assert "hosted:alices-own" not in explorer

    response = client.post(
        "/projects/demo/files/data", {"action": "launch", "routine": "hosted:square", "paths": ["data/a.txt"]}
    )
    assert response.status_code == 302
    assert response["Location"] == "/hosted/square/?project=demo&selected=data%2Fa.txt"
    page = client.get(response["Location"]).content.decode()
    assert '<input type="hidden" name="selected" value="data/a.txt">' in page
    assert '<option value="demo" selected>' in page

    launched = launch(client, "square", {"n": 3}, project="demo", selected=["data/a.txt"])
    assert launched.status_code == 302
    run = HostedRun.objects.get()
    assert run.via == "explorer" and run.project.slug == "demo" and run.inputs == {"data": "data/a.txt"}

    refused = client.post(
        "/projects/demo/files/data", {"action": "launch", "routine": f"hosted:{private.slug}", "paths": ["data/a.txt"]}
    )
    assert refused.status_code == 400 and "was not found, or you have no access" in refused.content.decode()


def test_a_selection_that_fits_no_input_is_refused_next_to_the_selection(square, bob):
    write(square.project, "data/a.txt", b"a\n")
    write(square.project, "data/b.txt", b"b\n")
    response = launch(client_of(bob), "square", {"n": 3}, project="demo", selected=["data/a.txt", "data/b.txt"])
    assert response.status_code == 400
    assert "does not fit" in response.content.decode().split('id="selection"')[1].split("</fieldset>")[0]
    assert not Job.objects.exists()


def test_an_upload_that_cannot_be_stored_is_refused_and_starts_nothing(square, carol):
    home = hosting.home_project(carol)
    files.write_file(project=home, relpath="hosted", stream=io.BytesIO(b"a file where the folder would go"))
    response = launch(client_of(carol), "square", {"n": 1}, upload_data=SimpleUploadedFile("d.txt", b"x"))
    assert response.status_code == 400 and "is a file" in response.content.decode()
    assert not Job.objects.exists()
