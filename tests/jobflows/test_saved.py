"""Saved jobflows: versions, permissions (alice owner, bob member, carol viewer, charlie stranger), runs, imports."""

import uuid
from datetime import datetime

import pytest

from accelerator.errors import Conflict, Forbidden, NotFound
from jobflows import saved
from jobflows.models import Jobflow, JobflowLaunch, JobflowRun, JobflowVersion
from jobs.models import Job
from routines import services as routine_services
from routines.models import Membership, Role, RoutineVersion
from tests.conftest import wait_for_status

SCHEMA = {"type": "object", "properties": {"N": {"type": "integer", "minimum": 1, "default": 1}}}


def make_routine(project, user, name, command, **extra):
    task = {
        "name": name,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": command},
        "timeout": 60,
        "required_cores": 0.5,
        **extra,
    }
    return routine_services.save_routine(project=project, user=user, task=task)


@pytest.fixture
def routines(project, alice):
    nonce = uuid.uuid4().hex[:8]  # never answered from an earlier test's cache
    echo = make_routine(project, alice, "echo", f"echo {nonce}; sleep 1; echo done")
    count = make_routine(project, alice, "count", f"echo {nonce}; sleep 1; echo count $N", conf_schema=SCHEMA)
    return echo, count


def diamond(echo, count, **b_conf):
    v_echo, v_count = echo.latest_version.number, count.latest_version.number
    return {
        "format": "acc-jobflow/1",
        "nodes": [
            {"id": "a", "routine": echo.pk, "version": v_echo},
            {"id": "b", "routine": count.pk, "version": v_count, "conf": b_conf or {"N": "5"}},
            {"id": "c", "routine": echo.pk, "version": v_echo},
            {"id": "d", "routine": count.pk, "version": v_count},
        ],
        "edges": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]],
    }


def test_saving_records_a_version_only_when_the_definition_changes(project, alice, routines):
    flow, v1, new = saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))
    assert new and v1.number == 1 and flow.latest_version == v1
    _, same, new = saved.save_jobflow(
        project=project, user=alice, name="diamond", definition=diamond(*routines), jobflow=flow
    )
    assert not new and same == v1
    _, v2, new = saved.save_jobflow(
        project=project, user=alice, name="diamond", definition=diamond(*routines, N="7"), jobflow=flow
    )
    assert new and v2.number == 2
    assert JobflowVersion.objects.get(pk=v1.pk).definition["nodes"][1]["conf"] == {"N": "5"}, "v1 never changes"


def test_viewer_cannot_save_or_run_and_a_stranger_sees_nothing(project, alice, charlie, routines, django_user_model):
    flow, _, _ = saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))
    carol = django_user_model.objects.create_user("carol", "carol@example.org", "carol-pass-123")
    Membership.objects.create(project=project, user=carol, role=Role.VIEWER)
    assert saved.readable_jobflow(carol, flow.pk) == flow
    with pytest.raises(Forbidden):
        saved.save_jobflow(project=project, user=carol, name="x", definition=diamond(*routines))
    with pytest.raises(Forbidden):
        saved.run_jobflow(jobflow=flow, user=carol)
    with pytest.raises(NotFound):
        saved.readable_jobflow(charlie, flow.pk)
    assert Jobflow.objects.count() == 1 and not JobflowRun.objects.exists()


def test_errors_save_nothing_and_name_their_node(project, alice, routines):
    bad = diamond(*routines)
    bad["edges"].append(["d", "a"])
    with pytest.raises(saved.InvalidDefinition) as caught:
        saved.save_jobflow(project=project, user=alice, name="loop", definition=bad)
    assert caught.value.node == "a" and "cycle" in caught.value.detail
    assert not Jobflow.objects.exists()

    flow, _, _ = saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))
    with pytest.raises(saved.InvalidDefinition) as caught:
        saved.save_jobflow(
            project=project, user=alice, name="renamed", definition=diamond(*routines, N="zero"), jobflow=flow
        )
    assert caught.value.node == "b"
    with pytest.raises(Conflict):
        saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))
    flow.refresh_from_db()
    assert flow.name == "diamond" and flow.versions.count() == 1 and Jobflow.objects.count() == 1


def test_a_routine_of_another_project_not_shared_is_not_usable(project, alice, charlie, routines):
    from routines.models import Project

    other = Project.objects.create(slug="other", name="Other")
    Membership.objects.create(project=other, user=charlie, role=Role.OWNER)
    secret = make_routine(other, charlie, "secret", "echo secret")
    definition = {"nodes": [{"id": "s", "routine": secret.pk, "version": 1}], "edges": []}
    with pytest.raises(saved.InvalidDefinition) as caught:
        saved.save_jobflow(project=project, user=alice, name="steal", definition=definition)
    assert caught.value.node == "s" and "not found" in caught.value.detail


def test_run_follows_the_edges_with_the_pinned_versions(start_worker, project, alice, api, routines):
    start_worker("local", concurrency=4)
    echo, count = routines
    flow, version, _ = saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))
    versions_before = RoutineVersion.objects.count()
    root = saved.run_jobflow(jobflow=flow, user=alice)
    assert JobflowLaunch.objects.get(run__root=root).version == version
    assert wait_for_status(root.pk, {"SUCCEEDED", "FAILED"}, timeout=120).status == "SUCCEEDED"
    nodes = {n["node"]: n for n in api(alice).get(f"/api/v1/jobs/{root.pk}/").json()["nodes"]}
    start = {k: datetime.fromisoformat(n["started_at"]) for k, n in nodes.items()}
    end = {k: datetime.fromisoformat(n["finished_at"]) for k, n in nodes.items()}
    assert start["d"] >= max(end["b"], end["c"]) and min(start["b"], start["c"]) >= end["a"]
    jobs = {j.node_key: j for j in Job.objects.filter(flow_run__root=root)}
    assert jobs["b"].routine_version == count.latest_version and jobs["a"].routine_version == echo.latest_version
    assert jobs["b"].conf == {"N": "5"}
    assert RoutineVersion.objects.count() == versions_before, "a saved jobflow's run records no routine version"
    assert saved.latest_run_root(flow) == root


def test_exports_import_back_to_the_same_definition(project, alice, routines):
    flow, version, _ = saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))
    name, text = saved.export_jobflow(jobflow=flow, user=alice, fmt="wkube")
    assert name == "wkube.py" and "from acc_client import WKubeTask" in text
    _, same, new = saved.import_jobflow(project=project, user=alice, text=text, filename=name, jobflow=flow)
    assert not new and same == version
    name, text = saved.export_jobflow(jobflow=flow, user=alice, fmt="json")
    _, same, new = saved.import_jobflow(project=project, user=alice, text=text, filename=name, jobflow=flow)
    assert not new and same == version


def test_hostile_import_is_refused_and_saves_nothing(project, alice, routines, tmp_path):
    flow, _, _ = saved.save_jobflow(project=project, user=alice, name="diamond", definition=diamond(*routines))
    marker = tmp_path / "ran"
    source = f"import os\nos.system('touch {marker}')\n"
    with pytest.raises(saved.InvalidDefinition, match="line 1"):
        saved.import_jobflow(project=project, user=alice, text=source, filename="wkube.py", jobflow=flow)
    assert not marker.exists() and flow.versions.count() == 1


def test_an_output_into_another_project_is_refused_at_save(project, alice, charlie, routines):
    from routines.models import Project

    Project.objects.create(slug="other", name="Other")
    definition = diamond(*routines)
    definition["nodes"][0]["outputs"] = ["/code/out/:acc://other/stolen/"]
    with pytest.raises(saved.InvalidDefinition) as caught:
        saved.save_jobflow(project=project, user=alice, name="diamond", definition=definition)
    assert caught.value.node == "a" and "outside project demo" in caught.value.detail
    assert not Jobflow.objects.exists()
