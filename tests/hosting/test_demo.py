"""`make run`'s demo includes the public hosted model `demo-hosted`: any signed-in user launches it with an
integer n on the local backend and gets n squared."""

import pytest
from django.core.management import call_command

from hosting.models import HostedModel
from jobs.models import LogChunk
from tests.conftest import wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_hosted_squares_n_for_any_signed_in_user(api, start_worker, carol):
    call_command("load_demo", verbosity=0)
    call_command("load_demo", verbosity=0)  # safe to run again
    model = HostedModel.objects.get(slug="demo-hosted")
    assert model.policy == "public" and model.default_version.conf_schema["required"] == ["n"]
    start_worker("local")

    refused = api(carol).post("/api/v1/hosted/demo-hosted/runs/", {"conf": {"n": "7"}}, format="json")
    assert refused.status_code == 400 and "n:" in refused.json()["detail"]

    run = api(carol).post("/api/v1/hosted/demo-hosted/runs/", {"conf": {"n": 7}}, format="json").json()
    job = wait_for_status(run["job"], {"SUCCEEDED", "FAILED"})
    assert job.status == "SUCCEEDED", job.message
    assert "7 squared is 49" in "".join(LogChunk.objects.filter(job=job).values_list("text", flat=True))
    [out] = api(carol).get(run["status_url"]).json()["detail"]["outputs"]
    assert out["path"].endswith("/result/square.txt")
    assert b"".join(api(carol).get(out["url"]).streaming_content) == b"7 squared is 49\n"
