"""Who may pass the proxy into a session: the user who started it and the people who may run its routine
(or, for a hosted run, the people the hosted model is shared with). Everyone else is told nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from hosting import access as hosted_access
from hosting import services as hosting
from interactive.services import may_use
from jobs.models import Job
from routines import services
from routines.models import Membership, Project, Role
from workers import dispatch

pytestmark = pytest.mark.django_db

TASK = {
    "name": "lab",
    "job_kwargs": {
        "docker_image": "acc-test/python:latest",
        "command": "python3 -m http.server 8787",
        "conf": {"interactive_socket": "0.0.0.0:8787"},
    },
    "conf_schema": {"type": "object", "properties": {}},
}


@pytest.fixture
def dave(django_user_model):
    return django_user_model.objects.create_user("dave", "dave@example.org", "dave-pass-123")


@pytest.fixture
def routine(project, alice):
    return services.save_routine(project=project, user=alice, task=TASK)


def test_the_owner_and_the_people_who_may_run_the_routine_get_in(routine, alice, bob, charlie, dave):
    job = dispatch.run_routine(routine=routine, user=alice)
    viewer_project = Project.objects.get(slug="demo")
    Membership.objects.create(project=viewer_project, user=dave, role=Role.VIEWER)
    assert may_use(alice, job) and may_use(bob, job), "the owner; a member of the routine's project"
    assert not may_use(charlie, job)
    charlie.is_active = False
    assert not may_use(charlie, job)


def test_reading_the_routine_is_not_enough_to_use_a_session(routine, alice, charlie, dave):
    """A session runs code (a Jupyter session is a shell): a viewer, who may not run jobs, stays out."""
    job = dispatch.run_routine(routine=routine, user=alice)
    Membership.objects.create(project=Project.objects.get(slug="demo"), user=dave, role=Role.VIEWER)
    assert not may_use(dave, job), "a viewer of the project may read the routine, not run it"
    assign_perm("routines.view_routine", charlie, routine)
    charlie = type(charlie).objects.get(pk=charlie.pk)  # guardian caches permissions on the object
    assert not may_use(charlie, job), "shared with charlie alone, to read"
    Membership.objects.filter(user=dave).update(role=Role.MEMBER)
    dave = type(dave).objects.get(pk=dave.pk)
    assert may_use(dave, job), "once dave may run jobs in the project"


def test_a_hosted_run_is_the_launchers_and_the_models_shares_only(routine, alice, bob, charlie, dave):
    model = hosting.publish(
        user=alice,
        project_slug="demo",
        data={"slug": "lab", "title": "Lab", "description": "", "policy": "public", "routine": routine.pk},
    )
    job = hosting.launch(model=model, user=charlie, conf={}).job
    assert may_use(charlie, job), "the launcher"
    assert not may_use(alice, job) and not may_use(bob, job), "neither the author nor their project: it is charlie's"
    assert not may_use(dave, job), "a public model's other users do not get in"
    hosted_access.share(model, user=dave, launch=False)
    assert may_use(dave, job)
    team = Group.objects.create(name="team")
    bob.groups.add(team)
    hosted_access.share(model, group=team)
    assert may_use(bob, job)


def test_a_job_without_routine_access_is_closed_to_anonymous_users(routine, alice):
    from django.contrib.auth.models import AnonymousUser

    job = dispatch.run_routine(routine=routine, user=alice)
    assert not may_use(AnonymousUser(), job) and not may_use(None, job)
    assert Job.objects.count() == 1
