"""The project dashboard and the job lists: filters, keyset pages, and a query count independent of size."""

import datetime as dt
import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Job
from jobs.states import Status
from tests.web.conftest import make_routine

pytestmark = pytest.mark.django_db


def many_jobs(routine, user, n, **fields):
    version = routine.latest_version
    Job.objects.bulk_create(
        [
            Job(project=routine.project, routine_version=version, user=user, name=routine.name, **fields)
            for _ in range(n)
        ],
        batch_size=2000,
    )


def ids_on(response) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-job="(\d+)">', response.content.decode())]


def queries_of(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_dashboard_shows_recent_jobs_routines_and_members(signed_in, project, alice, bob):
    routine = make_routine(project, alice)
    many_jobs(routine, bob, 12, status=Status.SUCCEEDED)
    response = signed_in(alice).get("/projects/demo/")
    text = response.content.decode()
    assert response.status_code == 200
    assert len(ids_on(response)) == 10
    assert f'href="/routines/{routine.pk}/"' in text
    assert "alice" in text and "bob" in text and "Owner" in text and "Member" in text


def test_strangers_get_no_dashboard(signed_in, project, charlie):
    assert signed_in(charlie).get("/projects/demo/").status_code == 404
    assert signed_in(charlie).get("/projects/demo/jobs/").status_code == 404


def test_job_list_filters_by_status_routine_user_and_date(signed_in, project, alice, bob):
    greet = make_routine(project, alice, name="greet")
    other = make_routine(project, alice, name="other")
    many_jobs(greet, alice, 3, status=Status.SUCCEEDED)
    many_jobs(greet, bob, 2, status=Status.FAILED)
    many_jobs(other, alice, 4, status=Status.RUNNING)
    old = Job.objects.filter(user=bob).first()
    Job.objects.filter(pk=old.pk).update(created_at=dt.datetime(2020, 5, 1, 12, tzinfo=dt.UTC))
    client = signed_in(alice)
    assert len(ids_on(client.get("/projects/demo/jobs/"))) == 9
    assert len(ids_on(client.get("/projects/demo/jobs/?status=FAILED&status=RUNNING"))) == 6
    assert len(ids_on(client.get(f"/projects/demo/jobs/?routine={other.pk}"))) == 4
    assert len(ids_on(client.get("/projects/demo/jobs/?user=bob"))) == 2
    assert ids_on(client.get("/projects/demo/jobs/?since=2020-05-01&until=2020-05-01")) == [old.pk]
    assert len(ids_on(client.get("/projects/demo/jobs/?until=2020-04-30"))) == 0


def test_bad_filters_are_shown_next_to_their_field(signed_in, project, alice):
    response = signed_in(alice).get("/projects/demo/jobs/?since=yesterday&status=NOPE&routine=x")
    text = response.content.decode()
    assert response.status_code == 200
    assert text.count('class="field-error"') == 3


def test_pages_go_back_and_forth_by_keyset(signed_in, project, alice):
    routine = make_routine(project, alice)
    many_jobs(routine, alice, 120, status=Status.SUCCEEDED)
    newest_first = list(Job.objects.order_by("-pk").values_list("pk", flat=True))
    client = signed_in(alice)
    first = client.get("/projects/demo/jobs/?status=SUCCEEDED")
    assert ids_on(first) == newest_first[:50]
    older = re.search(r'id="page-older" href="\?([^"]+)"', first.content.decode()).group(1).replace("&amp;", "&")
    assert "status=SUCCEEDED" in older and 'id="page-newer"' not in first.content.decode()
    second = client.get(f"/projects/demo/jobs/?{older}")
    assert ids_on(second) == newest_first[50:100]
    newer = re.search(r'id="page-newer" href="\?([^"]+)"', second.content.decode()).group(1).replace("&amp;", "&")
    assert ids_on(client.get(f"/projects/demo/jobs/?{newer}")) == newest_first[:50]
    third = client.get(f"/projects/demo/jobs/?before={newest_first[99]}")
    assert ids_on(third) == newest_first[100:] and 'id="page-older"' not in third.content.decode()


def test_all_jobs_lists_only_the_users_projects(signed_in, project, alice, charlie):
    from routines.models import Membership, Project, Role

    routine = make_routine(project, alice)
    many_jobs(routine, alice, 3)
    mine = Project.objects.create(slug="charlies", name="C")
    Membership.objects.create(project=mine, user=charlie, role=Role.OWNER)
    theirs = make_routine(mine, charlie, name="c")
    many_jobs(theirs, charlie, 2)
    assert len(ids_on(signed_in(charlie).get("/jobs/"))) == 2
    assert len(ids_on(signed_in(alice).get("/jobs/"))) == 3


def test_the_job_list_costs_the_same_queries_with_ten_thousand_jobs(
    signed_in, project, alice, bob, django_assert_max_num_queries
):
    routine = make_routine(project, alice)
    many_jobs(routine, alice, 5, status=Status.SUCCEEDED)
    client = signed_in(alice)
    urls = ["/projects/demo/jobs/", "/projects/demo/jobs/?status=SUCCEEDED&user=alice", "/jobs/", "/projects/demo/"]
    few = {url: queries_of(client, url) for url in urls}
    many_jobs(routine, bob, 10_000, status=Status.SUCCEEDED)
    for url in urls:
        with django_assert_max_num_queries(few[url]):
            started = time.monotonic()
            response = client.get(url)
            elapsed = time.monotonic() - started
        assert response.status_code == 200 and len(ids_on(response)) in (5, 10, 50)
        assert elapsed < 5, f"{url} took {elapsed:.1f}s with 10,000 jobs"
    before = Job.objects.order_by("-pk").values_list("pk", flat=True)[5000]
    with django_assert_max_num_queries(few["/projects/demo/jobs/"]):
        assert len(ids_on(client.get(f"/projects/demo/jobs/?before={before}"))) == 50
