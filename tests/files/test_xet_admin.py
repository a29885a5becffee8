"""Operators see the Xet store in the admin: each xorb once, which projects may use it, files' hashes."""

import io
import random

import pytest

from files import services, xet_files

pytestmark = pytest.mark.django_db


def test_operator_sees_a_prepared_file_its_xorb_and_the_project_that_may_use_it(client, django_user_model, project):
    operator = django_user_model.objects.create_superuser("ops", "ops@example.org", "ops-pass-123")
    body = random.Random(1).randbytes(300_000)
    services.write_file(project=project, relpath="a/data.bin", stream=io.BytesIO(body))
    stat = xet_files.stat(project=project, filename="/a/data.bin")
    client.force_login(operator)
    files_page = client.get("/admin/files/xetfile/").content.decode()
    assert stat["merkle_hash"] in files_page and stat["sha256"] in files_page
    xorbs = client.get("/admin/files/xorb/")
    assert xorbs.status_code == 200
    from files.models import Xorb

    row = Xorb.objects.get()
    detail = client.get(f"/admin/files/xorb/{row.pk}/change/").content.decode()
    assert row.hash in detail and str(project) in detail
    assert client.get("/admin/files/xorb/add/").status_code == 403, "the store is written by uploads only"
