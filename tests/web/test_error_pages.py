"""Error pages are the site's own (header, styles, a way back); the API keeps answering JSON; the favicon."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from accelerator.urls import permission_denied, server_error

pytestmark = pytest.mark.django_db


def assert_site_page(text: str, title: str) -> None:
    assert 'class="topbar"' in text and "/static/css/app.css" in text, "the page has the site's header and styles"
    assert f"<h1>{title}</h1>" in text
    assert 'rel="icon"' in text


def test_an_unknown_address_gets_the_sites_404_page(signed_in, alice):
    response = signed_in(alice).get("/no/such/page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert_site_page(text, "Not found")
    assert "/no/such/page/" in text and 'href="/jobs/"' in text and alice.username in text


def test_a_job_address_that_is_not_a_number_gets_the_sites_404_page(signed_in, alice, client):
    response = signed_in(alice).get("/jobs/abc/")
    assert response.status_code == 404
    assert_site_page(response.content.decode(), "Not found")
    client.logout()
    anonymous = client.get("/jobs/abc/")
    assert anonymous.status_code == 404 and "Sign in" in anonymous.content.decode()


def test_an_unknown_api_address_still_answers_json(signed_in, alice):
    response = signed_in(alice).get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_403_and_500_are_the_sites_pages_and_json_under_the_api():
    factory = RequestFactory()
    page = server_error(factory.get("/jobs/1/"))
    assert page.status_code == 500
    assert_site_page(page.content.decode(), "Something went wrong on our side")
    api = server_error(factory.get("/api/v1/jobs/1/"))
    assert api.status_code == 500 and api["Content-Type"] == "application/json" and b'"detail"' in api.content

    request = factory.get("/projects/demo/")
    request.user = AnonymousUser()
    denied = permission_denied(request, Exception("no"))
    assert denied.status_code == 403
    assert_site_page(denied.content.decode(), "Not allowed")
    api = permission_denied(factory.get("/api/v1/jobs/1/"), Exception("no"))
    assert api.status_code == 403 and b'"detail"' in api.content


def test_every_page_links_a_favicon_and_favicon_ico_answers(client, signed_in, alice):
    login = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg"' in login and 'href="/favicon.ico"' in login
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00", "an ICO file"
