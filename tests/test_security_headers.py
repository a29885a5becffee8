"""Security headers on every response: a Content-Security-Policy that lets no inline or injected script run,
nosniff and a referrer policy everywhere; over HTTPS (ACC_HTTPS) also HSTS and cookies marked Secure; and the
API docs served from our own static files, so they work offline and under the policy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.contrib.staticfiles import finders

from hosting.models import HostedModel
from tests.conftest import ROOT
from tests.hosting.conftest import publish, square_routine

PORTAL = "https://portal.example.org"


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}; a missing header fails the test."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_strict_scripts(directives: dict[str, list[str]]) -> None:
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts, "neither script-src nor default-src is set"
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, scripts
    assert not any(s in ("*", "data:", "http:", "https:") for s in scripts), scripts
    assert directives.get("object-src") == ["'none'"]
    assert directives.get("base-uri") in (["'none'"], ["'self'"])


def assert_common_headers(response) -> None:
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") == "same-origin"


@pytest.fixture
def hosted(project, alice):
    model = publish(alice, square_routine(project, alice), policy="public")
    HostedModel.objects.filter(pk=model.pk).update(embed_origins=[PORTAL])
    return model


@pytest.fixture
def pages(client, alice, hosted):
    client.force_login(alice)
    routine = hosted.default_version.routine_version.routine
    return {
        "home": "/",
        "routine": f"/routines/{routine.pk}/",
        "hosted": "/hosted/square/",
        "catalog": "/hosted/",
        "api-docs": "/api/docs/",
    }


@pytest.mark.parametrize("name", ["home", "routine", "hosted", "catalog", "api-docs"])
def test_every_page_carries_a_policy_without_inline_or_eval_scripts(client, pages, name):
    response = client.get(pages[name])
    assert response.status_code == 200
    directives = policy(response)
    assert_strict_scripts(directives)
    assert directives.get("frame-ancestors") == ["'none'"]
    assert_common_headers(response)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/docs/", "/api/v1/projects/"])
def test_anonymous_pages_and_api_answers_carry_the_headers(client, path):
    response = client.get(path)
    assert response.status_code in (200, 401)
    assert_strict_scripts(policy(response))
    assert_common_headers(response)


def test_the_widget_may_be_framed_by_its_embed_origins_only(client, pages):
    response = client.get("/hosted/square/widget/")
    assert response.status_code == 200
    directives = policy(response)
    assert_strict_scripts(directives)  # the full policy, not only the framing rule
    assert sorted(directives["frame-ancestors"]) == sorted(["'self'", PORTAL])
    assert "X-Frame-Options" not in response.headers
    assert_common_headers(response)


def test_a_refused_widget_names_no_embed_origin(client, project, alice, charlie):
    publish(alice, square_routine(project, alice), policy="private")
    client.force_login(charlie)
    response = client.get("/hosted/square/widget/")
    assert response.status_code == 404
    directives = policy(response)
    assert_strict_scripts(directives)
    assert directives["frame-ancestors"] == ["'self'"]


def test_the_api_docs_load_swagger_ui_from_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), "inline script"
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    assert not [u for u in urls if re.match(r"(https?:)?//", u)], f"a CDN or other origin in {urls}"
    static = [u for u in urls if u.startswith("/static/")]
    assert any(u.endswith("swagger-ui-bundle.js") for u in static), static
    for url in static:
        assert finders.find(url.removeprefix("/static/").split("?")[0]), f"{url} is not among our static files"
    scripts = [u for u in re.findall(r'<script[^>]*\bsrc="([^"]+)"', html) if not u.startswith("/static/")]
    assert scripts, "the page's own start-up script (SpectacularSwaggerSplitView's ?script) is missing"
    for url in scripts:
        script = client.get(url)
        assert script.status_code == 200
        assert "javascript" in script.headers["Content-Type"]
        assert "SwaggerUIBundle" in script.content.decode()
        assert_common_headers(script)


# --- over HTTPS -------------------------------------------------------------------------------------------
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
login = client.get("/accounts/login/", secure={secure})
print(json.dumps({{
    "status": login.status_code,
    "hsts": login.headers.get("Strict-Transport-Security"),
    "csrf_secure": bool(login.cookies["csrftoken"]["secure"]),
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
}}))
"""


def probe(*, secure: bool, **env) -> dict:
    """What a server started with `env` answers to a sign-in page (a process of its own: settings read env once)."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("ACC_HTTPS", "ACC_TRUST_X_FORWARDED_PROTO")}
    run_env = {**inherited, "DJANGO_SETTINGS_MODULE": "accelerator.settings", **env}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(secure=secure)],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_over_https_the_site_sends_hsts_and_secure_cookies():
    seen = probe(secure=True, ACC_HTTPS="true")
    assert seen["status"] == 200
    assert seen["hsts"] and seen["hsts"].startswith("max-age=31536000"), seen
    assert seen["csrf_secure"] and seen["session_secure"], seen


def test_behind_a_tls_proxy_the_forwarded_scheme_is_trusted_only_when_asked():
    assert probe(secure=True, ACC_HTTPS="true", ACC_TRUST_X_FORWARDED_PROTO="true")["proxy_header"] == [
        "HTTP_X_FORWARDED_PROTO",
        "https",
    ]
    assert probe(secure=True, ACC_HTTPS="true")["proxy_header"] is None


def test_a_laptop_over_http_gets_no_hsts_and_plain_cookies():
    seen = probe(secure=False)
    assert seen["status"] == 200
    assert seen["hsts"] is None
    assert not seen["csrf_secure"] and not seen["session_secure"], seen
