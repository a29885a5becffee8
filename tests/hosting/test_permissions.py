"""Who may do what under /api/v1/hosted/, for each access policy.

alice is the author (and owner of `demo`), bob a member of `demo`, carol a
signed-in stranger, dave a signed-in stranger who presents the link model's
token with every request, and an anonymous client. A refusal of a model
someone may not see looks exactly like a model that does not exist; people
who see a model but may not manage it are told so (403). Every cell runs in
a savepoint that is rolled back, so the cells do not see each other's
changes.
"""

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from guardian.models import GroupObjectPermission, UserObjectPermission

from hosting import access
from hosting import services as hosting
from hosting.models import HostedModel, HostedRun, HostedVersion
from jobs.models import Job
from routines.models import Membership, Role
from tests.hosting.conftest import publish, square_routine

pytestmark = pytest.mark.django_db

USERS = ("alice", "bob", "carol", "dave", "anonymous")
POLICIES = ("private", "project", "public", "link")
MISSING = "no-such-model"
BASE = "/api/v1/hosted/{slug}/"

ENDPOINTS = {
    "detail": ("get", BASE, None),
    "rename": ("patch", BASE, {"title": "Renamed"}),
    "delete": ("delete", BASE, None),
    "rotate-link": ("post", BASE + "link/", None),
    "revoke-link": ("delete", BASE + "link/", None),
    "shares": ("get", BASE + "shares/", None),
    "share": ("post", BASE + "shares/", {"username": "carol", "launch": False}),
    "unshare": ("delete", BASE + "shares/", {"username": "carol"}),
    "versions": ("get", BASE + "versions/", None),
    "add-version": ("post", BASE + "versions/", {"notes": "second"}),
    "version": ("get", BASE + "versions/1/", None),
    "deprecate": ("patch", BASE + "versions/1/", {"status": "deprecated"}),
    "runs": ("get", BASE + "runs/", None),
    "launch": ("post", BASE + "runs/", {"conf": {"n": 3}}),
    "alices-run": ("get", BASE + "runs/{run}/", None),
    "usage": ("get", BASE + "usage/", None),
}

# Each row: the status for alice, bob, carol, dave and anonymous, each under private, project, public, link.
MATRIX_TEXT = """
#              alice            bob              carol            dave             anonymous
#              pri pro pub lnk  pri pro pub lnk  pri pro pub lnk  pri pro pub lnk  pri pro pub lnk
detail         200 200 200 200  404 200 200 404  404 404 200 404  404 404 200 200  401 401 401 401
versions       200 200 200 200  404 200 200 404  404 404 200 404  404 404 200 200  401 401 401 401
version        200 200 200 200  404 200 200 404  404 404 200 404  404 404 200 200  401 401 401 401
runs           200 200 200 200  404 200 200 404  404 404 200 404  404 404 200 200  401 401 401 401
launch         201 201 201 201  404 201 201 404  404 404 201 404  404 404 201 201  401 401 401 401
alices-run     200 200 200 200  404 404 404 404  404 404 404 404  404 404 404 404  401 401 401 401
rename         200 200 200 200  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
delete         204 204 204 204  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
rotate-link    200 200 200 200  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
revoke-link    204 204 204 204  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
shares         200 200 200 200  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
share          200 200 200 200  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
unshare        200 200 200 200  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
add-version    201 201 201 201  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
deprecate      200 200 200 200  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
usage          200 200 200 200  404 403 403 404  404 404 403 404  404 404 403 403  401 401 401 401
"""


def parse_matrix(text: str) -> dict[tuple[str, str, str], int]:
    cells = {}
    for line in text.strip().splitlines():
        if line.startswith("#"):
            continue
        endpoint, *codes = line.split()
        assert endpoint in ENDPOINTS and len(codes) == len(USERS) * len(POLICIES), line
        for i, code in enumerate(codes):
            cells[(endpoint, USERS[i // len(POLICIES)], POLICIES[i % len(POLICIES)])] = int(code)
    assert {endpoint for endpoint, _, _ in cells} == set(ENDPOINTS)
    return cells


MATRIX = parse_matrix(MATRIX_TEXT)


@pytest.fixture
def cast(api, project, alice, bob, carol, dave):
    """The four models, one per policy, and a way to send a request as each member of the cast."""
    routine = square_routine(project, alice)
    models = {policy: publish(alice, routine, slug=f"m-{policy}", policy=policy) for policy in POLICIES}
    token = access.link_token_of(models["link"])
    clients = {"alice": api(alice), "bob": api(bob), "carol": api(carol), "dave": api(dave), "anonymous": api()}

    def send(who, method, path, body=None, *, with_token=True):
        headers = {"HTTP_X_LINK_TOKEN": token} if who == "dave" and with_token else {}
        return getattr(clients[who], method)(path, body, format="json", **headers)

    return {"models": models, "token": token, "send": send, "users": {"alice": alice, "bob": bob, "carol": carol}}


def state():
    """Everything a request could change, to show that a refusal changed nothing."""
    return (
        list(HostedModel.objects.order_by("pk").values()),
        list(HostedVersion.objects.order_by("pk").values()),
        HostedRun.objects.count(),
        Job.objects.count(),
        UserObjectPermission.objects.count(),
        GroupObjectPermission.objects.count(),
    )


def same_apart_from(refused, missing, old: str, new: str) -> bool:
    """The refusal says exactly what the request for something absent says, with `old` named instead of `new`."""
    expected = dict(missing.json())
    if "detail" in expected:
        expected["detail"] = expected["detail"].replace(old, new)
    return refused.status_code == missing.status_code and refused.json() == expected


def succeeded_visibly(endpoint, response, *, model, who, send) -> str | None:
    """What the user sees after an allowed request; a message when it is not right."""
    body = response.json() if response.content else None
    model_after = HostedModel.objects.filter(pk=model.pk).first()
    checks = {
        "detail": lambda: body["slug"] == model.slug and body["can_manage"] == (who == "alice"),
        "rename": lambda: model_after.title == "Renamed" and body["title"] == "Renamed",
        "delete": lambda: model_after is None,
        "rotate-link": lambda: access.link_token_of(model_after) == body["token"] != access.link_token_of(model),
        "revoke-link": lambda: model_after.link_token_hash == "",
        "shares": lambda: body == [],
        "share": lambda: body == [{"user": "carol", "launch": False}],
        "unshare": lambda: body == [],
        "versions": lambda: [v["number"] for v in body] == [1],
        "add-version": lambda: body["number"] == 2 and model_after.default_version.number == 2,
        "version": lambda: body["number"] == 1 and body["status"] == "active",
        "deprecate": lambda: body["status"] == "deprecated" and body["runnable"] is True,
        "runs": lambda: body == [],
        "launch": lambda: _launched(body, model=model, who=who, send=send),
        "alices-run": lambda: body["user"] == "alice" and body["detail"]["conf"]["n"] == "2",
        "usage": lambda: body["runs"] == 0,
    }
    return None if checks[endpoint]() else f"unexpected answer {body}"


def _launched(body, *, model, who, send) -> bool:
    run = HostedRun.objects.select_related("job", "project").get(pk=body["id"])
    status = send(who, "get", body["status_url"], with_token=False)  # the status URL works as given
    return (
        run.model_id == model.pk
        and run.user.username == who
        and run.project.personal_of_id == run.user_id
        and run.job.conf["n"] == "3"
        and status.status_code == 200
        and status.json()["id"] == body["id"]
    )


def test_every_endpoint_allows_or_refuses_each_user_under_each_policy(cast):
    send, models = cast["send"], cast["models"]
    wrong = []
    for (endpoint, who, policy), expected in MATRIX.items():
        method, path, body = ENDPOINTS[endpoint]
        model = models[policy]
        with transaction.atomic():
            run = None
            if endpoint == "alices-run":
                run = hosting.launch(model=model, user=cast["users"]["alice"], conf={"n": 2}).pk
            before = state()
            response = send(who, method, path.format(slug=model.slug, run=run), body)
            problem = None
            if response.status_code != expected:
                problem = f"got {response.status_code}: {response.content[:200]}"
            elif expected >= 400:
                problem = _refusal_problem(cast, endpoint, who, policy, response, run=run)
                if state() != before:
                    problem = "a refused request changed something"
            else:
                problem = succeeded_visibly(endpoint, response, model=model, who=who, send=send)
            transaction.set_rollback(True)
        if problem:
            wrong.append(f"{endpoint} as {who} on {policy}: wanted {expected}, {problem}")
    assert not wrong, "\n".join(wrong)


def _refusal_problem(cast, endpoint, who, policy, response, *, run) -> str | None:
    send, model = cast["send"], cast["models"][policy]
    method, path, body = ENDPOINTS[endpoint]
    if response.status_code == 403:
        detail = response.json()["detail"]
        return None if "Only the author and the maintainers" in detail else f"unclear refusal: {detail}"
    if endpoint == "alices-run" and MATRIX[("detail", who, policy)] == 200:
        # they see the model, not alice's run: told like a run that does not exist
        missing = send(who, method, path.format(slug=model.slug, run=run + 1000), body)
        same = same_apart_from(response, missing, str(run + 1000), str(run))
    else:
        missing = send(who, method, path.format(slug=MISSING, run=run or 1), body)
        same = same_apart_from(response, missing, MISSING, model.slug)
    return None if same else f"{response.json()} differs from {missing.json()}"


def test_anonymous_gets_401_without_learning_anything(cast):
    send = cast["send"]
    response = send("anonymous", "get", f"/api/v1/hosted/m-link/?token={cast['token']}")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}
    assert send("anonymous", "get", "/api/v1/hosted/").status_code == 401
    assert send("anonymous", "post", "/api/v1/hosted/", {"project": "demo", "slug": "x"}).status_code == 401


def test_the_catalog_lists_what_each_user_may_see_without_a_link(cast):
    listed = {
        who: {m["slug"] for m in cast["send"](who, "get", "/api/v1/hosted/").json()}
        for who in ("alice", "bob", "carol", "dave")
    }
    assert listed == {
        "alice": {"m-private", "m-project", "m-public", "m-link"},
        "bob": {"m-project", "m-public"},
        "carol": {"m-public"},
        "dave": {"m-public"},
    }


def test_members_of_the_project_publish_and_strangers_are_told_it_does_not_exist(cast, project):
    routine = project.routines.get()
    wanted = {"alice": 201, "bob": 201, "carol": 404, "dave": 404, "anonymous": 401}
    for who, expected in wanted.items():
        data = {"project": "demo", "slug": "new-model", "title": "New", "routine": routine.pk}
        with transaction.atomic():
            response = cast["send"](who, "post", "/api/v1/hosted/", data)
            assert response.status_code == expected, (who, response.content)
            if expected == 201:
                assert HostedModel.objects.get(slug="new-model").author.username == who
            else:
                missing = cast["send"](who, "post", "/api/v1/hosted/", {**data, "project": "no-such-project"})
                assert same_apart_from(response, missing, "no-such-project", "demo"), who
                assert not HostedModel.objects.filter(slug="new-model").exists()
            transaction.set_rollback(True)


def test_owners_and_maintainers_of_the_project_manage_what_a_member_published(cast, project, api, bob, carol):
    routine = project.routines.get()
    data = {"project": "demo", "slug": "bobs", "title": "Bob's", "routine": routine.pk, "policy": "project"}
    assert api(bob).post("/api/v1/hosted/", data, format="json").status_code == 201
    assert api(carol).patch("/api/v1/hosted/bobs/", {"title": "Carol's"}, format="json").status_code == 404
    Membership.objects.create(project=project, user=carol, role=Role.MAINTAINER)
    for who, title in (("alice", "Alice's"), ("carol", "Carol's"), ("bob", "Bob's again")):
        response = cast["send"](who, "patch", "/api/v1/hosted/bobs/", {"title": title})
        assert response.status_code == 200 and response.json()["can_manage"] is True, who
    assert HostedModel.objects.get(slug="bobs").title == "Bob's again"


def test_a_view_only_share_can_view_but_not_launch(cast):
    send = cast["send"]
    shared = send("alice", "post", "/api/v1/hosted/m-private/shares/", {"username": "carol", "launch": False})
    assert shared.json() == [{"user": "carol", "launch": False}]
    assert send("carol", "get", "/api/v1/hosted/m-private/").status_code == 200
    assert send("carol", "get", "/api/v1/hosted/m-private/versions/").status_code == 200
    assert "m-private" in {m["slug"] for m in send("carol", "get", "/api/v1/hosted/").json()}

    refused = send("carol", "post", "/api/v1/hosted/m-private/runs/", {"conf": {"n": 3}})
    assert refused.status_code == 403
    assert "shared with you for viewing only" in refused.json()["detail"]
    assert "ask its author for launch access" in refused.json()["detail"]
    assert Job.objects.count() == 0 and HostedRun.objects.count() == 0
    assert send("carol", "patch", "/api/v1/hosted/m-private/", {"title": "Mine"}).status_code == 403

    send("alice", "post", "/api/v1/hosted/m-private/shares/", {"username": "carol"})
    assert send("carol", "post", "/api/v1/hosted/m-private/runs/", {"conf": {"n": 3}}).status_code == 201

    assert send("alice", "delete", "/api/v1/hosted/m-private/shares/", {"username": "carol"}).json() == []
    gone = send("carol", "get", "/api/v1/hosted/m-private/")
    assert same_apart_from(gone, send("carol", "get", f"/api/v1/hosted/{MISSING}/"), MISSING, "m-private")


def test_sharing_with_a_group_lets_its_members_launch(cast):
    send, carol = cast["send"], cast["users"]["carol"]
    Group.objects.create(name="lab").user_set.add(carol)
    assert send("alice", "post", "/api/v1/hosted/m-project/shares/", {"group": "lab"}).json() == [
        {"group": "lab", "launch": True}
    ]
    assert send("carol", "get", "/api/v1/hosted/m-project/").status_code == 200
    assert "m-project" in {m["slug"] for m in send("carol", "get", "/api/v1/hosted/").json()}
    launched = send("carol", "post", "/api/v1/hosted/m-project/runs/", {"conf": {"n": 4}})
    assert launched.status_code == 201 and HostedRun.objects.get().user == carol
    assert send("dave", "get", "/api/v1/hosted/m-project/").status_code == 404

    send("alice", "delete", "/api/v1/hosted/m-project/shares/", {"group": "lab"})
    assert send("carol", "get", "/api/v1/hosted/m-project/").status_code == 404
    assert send("carol", "get", "/api/v1/hosted/m-project/runs/").status_code == 404


def test_a_rotated_or_revoked_link_token_opens_nothing(cast, api, dave):
    send, old = cast["send"], cast["token"]
    assert api(dave).get(f"/api/v1/hosted/m-link/?token={old}").status_code == 200

    rotated = send("alice", "post", "/api/v1/hosted/m-link/link/").json()
    new = rotated["token"]
    assert new != old and rotated["link"].endswith(f"/hosted/m-link/?token={new}")
    assert send("alice", "get", "/api/v1/hosted/m-link/").json()["link"] == rotated["link"]
    assert api(dave).get(f"/api/v1/hosted/m-link/?token={new}").json()["link"] is None, "only managers see it"
    assert_link_refused(api(dave), old)

    assert send("alice", "delete", "/api/v1/hosted/m-link/link/").status_code == 204
    assert send("alice", "get", "/api/v1/hosted/m-link/").json()["link"] is None
    assert_link_refused(api(dave), new)
    assert Job.objects.count() == 0 and HostedRun.objects.count() == 0


def assert_link_refused(client, token):
    refused = client.get(f"/api/v1/hosted/m-link/?token={token}")
    missing = client.get(f"/api/v1/hosted/{MISSING}/?token={token}")
    assert refused.status_code == 404 and same_apart_from(refused, missing, MISSING, "m-link")
    assert "may have been revoked or replaced; ask the author for a new one" in refused.json()["detail"]
    launch = client.post("/api/v1/hosted/m-link/runs/", {"conf": {"n": 1}}, format="json", HTTP_X_LINK_TOKEN=token)
    assert launch.status_code == 404 and launch.json() == refused.json()


def test_a_link_holder_follows_the_status_url_of_their_run_without_adding_the_token(cast, api, dave):
    launched = cast["send"]("dave", "post", "/api/v1/hosted/m-link/runs/", {"conf": {"n": 5}})
    assert launched.status_code == 201
    run = api(dave).get(launched.json()["status_url"])
    assert run.status_code == 200 and run.json()["detail"]["conf"]["n"] == "5"
    [listed] = cast["send"]("alice", "get", "/api/v1/hosted/m-link/runs/").json()
    assert cast["token"] not in listed["status_url"], "the author's view does not carry dave's token"


def test_switching_a_model_to_the_link_policy_gives_its_author_a_link_that_works(cast, api, carol):
    send = cast["send"]
    switched = send("alice", "patch", "/api/v1/hosted/m-private/", {"policy": "link"}).json()
    token = switched["link"].partition("?token=")[2]
    assert switched["policy"] == "link" and token
    assert api(carol).get("/api/v1/hosted/m-private/").status_code == 404
    assert api(carol).get(f"/api/v1/hosted/m-private/?token={token}").status_code == 200
    assert api(carol).get(f"/api/v1/hosted/m-link/?token={token}").status_code == 404, "a token opens its model only"


def test_a_launcher_keeps_reading_their_run_after_the_link_is_revoked(cast, api, dave, carol):
    launched = cast["send"]("dave", "post", "/api/v1/hosted/m-link/runs/", {"conf": {"n": 5}}).json()
    assert cast["send"]("alice", "delete", "/api/v1/hosted/m-link/link/").status_code == 204
    assert api(dave).get("/api/v1/hosted/m-link/").status_code == 404
    mine = api(dave).get(f"/api/v1/hosted/m-link/runs/{launched['id']}/")
    assert mine.status_code == 200 and mine.json()["detail"]["conf"]["n"] == "5"
    stranger = api(carol).get(f"/api/v1/hosted/m-link/runs/{launched['id']}/")
    missing = api(carol).get(f"/api/v1/hosted/{MISSING}/runs/{launched['id']}/")
    assert stranger.status_code == 404 and same_apart_from(stranger, missing, MISSING, "m-link")


def test_deleting_an_unlaunched_model_removes_its_shares(cast, api, carol):
    send = cast["send"]
    assert send("alice", "post", "/api/v1/hosted/m-private/shares/", {"username": "carol"}).status_code == 200
    assert UserObjectPermission.objects.filter(object_pk=str(cast["models"]["private"].pk)).count() == 2
    assert send("alice", "delete", "/api/v1/hosted/m-private/").status_code == 204
    assert UserObjectPermission.objects.filter(object_pk=str(cast["models"]["private"].pk)).count() == 0
    assert api(carol).get("/api/v1/hosted/m-private/").status_code == 404


def test_the_catalog_api_filters_by_tag_and_the_page_slug_new_is_reserved(cast, api, project, alice):
    from hosting.models import HostedModel

    HostedModel.objects.filter(slug="m-public").update(tags=["climate", "crops"])
    found = api(alice).get("/api/v1/hosted/?tag=Crops").json()
    assert [m["slug"] for m in found] == ["m-public"]
    routine_id = cast["models"]["public"].default_version.routine_version.routine_id
    body = {"project": "demo", "slug": "new", "title": "Shadowed", "routine": routine_id}
    refused = api(alice).post("/api/v1/hosted/", body, format="json")
    assert refused.status_code == 400 and "reserved" in refused.json()["detail"]
