"""Everything under /api/v1/hosted/ is described in the OpenAPI schema, without a view left to guesswork."""

import pytest
from drf_spectacular.drainage import GENERATOR_STATS

pytestmark = pytest.mark.django_db

HOSTED = {
    "/api/v1/hosted/": ["get", "post"],
    "/api/v1/hosted/{slug}/": ["delete", "get", "patch"],
    "/api/v1/hosted/{slug}/link/": ["delete", "post"],
    "/api/v1/hosted/{slug}/shares/": ["delete", "get", "post"],
    "/api/v1/hosted/{slug}/versions/": ["get", "post"],
    "/api/v1/hosted/{slug}/versions/{number}/": ["get", "patch"],
    "/api/v1/hosted/{slug}/runs/": ["get", "post"],
    "/api/v1/hosted/{slug}/runs/{run_id}/": ["get"],
    "/api/v1/hosted/{slug}/usage/": ["get"],
}
METHODS = {"get", "post", "put", "patch", "delete"}


def test_every_hosted_endpoint_is_in_the_openapi_schema(api, alice):
    GENERATOR_STATS.reset()
    schema = api(alice).get("/api/schema/", {"format": "json"}).json()
    hosted = {
        path: sorted(m for m in operations if m in METHODS)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/hosted/")
    }
    assert hosted == HOSTED
    # drf-spectacular collects here what it had to guess or leave out while generating
    problems = [m for m in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache] if "hosting/" in m]
    assert not problems, problems

    launch = schema["paths"]["/api/v1/hosted/{slug}/runs/"]["post"]
    assert "token" in [p["name"] for p in launch["parameters"]]
    assert launch["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/HostedRun")
    assert schema["components"]["schemas"]["Launch"]["properties"]["secrets"]["writeOnly"] is True
    assert schema["paths"]["/api/v1/hosted/{slug}/"]["delete"]["responses"]["204"]
