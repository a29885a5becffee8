"""An interactive busybox httpd on the kubernetes backend, reached at its pod's address through the proxy.

A module of its own: the module's platform then runs a kubernetes worker only (workers of two backends on one
Celery queue would take each other's jobs)."""

import pytest

from tests.interactive.test_docker_http import httpd_is_served_to_its_owner_and_hidden_from_strangers

pytestmark = pytest.mark.kubernetes


def test_busybox_httpd_in_a_pod_is_served_to_its_owner_and_hidden_from_strangers(
    interactive_worker, web, api, project, alice, bob, charlie
):
    httpd_is_served_to_its_owner_and_hidden_from_strangers(
        "kubernetes", interactive_worker, web, api, project, alice, bob, charlie
    )
