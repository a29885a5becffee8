"""The accli login contract: web code -> refresh token -> rotating access tokens."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuthCode, RefreshToken

pytestmark = pytest.mark.django_db


def code_from_page(client, user) -> str:
    client.force_login(user)
    page = client.get("/acli-auth-code")
    assert page.status_code == 200
    match = re.search(r'id="acli-code">([^<]+)<', page.content.decode())
    assert match, "the page must show the code in #acli-code"
    return match.group(1).strip()


def test_auth_code_page_needs_sign_in(client):
    response = client.get("/acli-auth-code")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_code_is_exchanged_once_for_a_bare_string_refresh_token(client, alice):
    code = code_from_page(client, alice)
    first = client.post(
        "/api/v1/oauth/device/token/", {"device_authorization_code": code}, content_type="application/json"
    )
    assert first.status_code == 200
    assert isinstance(first.json(), str) and len(first.json()) > 30
    again = client.post(
        "/api/v1/oauth/device/token/", {"device_authorization_code": code}, content_type="application/json"
    )
    assert again.status_code == 400
    assert "already used" in again.json()["detail"]


def test_expired_or_unknown_code_is_refused_with_a_reason(client, alice):
    code = code_from_page(client, alice)
    AuthCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = client.post(
        "/api/v1/oauth/device/token/", {"device_authorization_code": code}, content_type="application/json"
    )
    assert expired.status_code == 400 and "expired" in expired.json()["detail"]
    wrong = client.post(
        "/api/v1/oauth/device/token/", {"device_authorization_code": "NOPE"}, content_type="application/json"
    )
    assert wrong.status_code == 400 and "not valid" in wrong.json()["detail"]


def test_refresh_rotates_and_reuse_revokes_the_family(client, alice):
    code = code_from_page(client, alice)
    refresh = client.post(
        "/api/v1/oauth/device/token/", {"device_authorization_code": code}, content_type="application/json"
    ).json()
    pair = client.post(
        "/api/v1/oauth/device/access-token/", {"refresh_token": refresh}, content_type="application/json"
    ).json()
    assert set(pair) == {"access_token", "refresh_token"} and pair["refresh_token"] != refresh
    projects = client.get("/api/v1/projects/", HTTP_X_AUTHORIZATION=pair["access_token"])
    assert projects.status_code == 200

    replay = client.post(
        "/api/v1/oauth/device/access-token/", {"refresh_token": refresh}, content_type="application/json"
    )
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    # the whole family is gone: the newest refresh and the access token stop working too
    newest = client.post(
        "/api/v1/oauth/device/access-token/", {"refresh_token": pair["refresh_token"]}, content_type="application/json"
    )
    assert newest.status_code == 401
    after = client.get("/api/v1/projects/", HTTP_X_AUTHORIZATION=pair["access_token"])
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    assert not RefreshToken.objects.filter(token_hash__contains=refresh).exists(), "only hashes are stored"


@pytest.mark.parametrize("header,needle", [(None, "credentials were not provided"), ("aca_bogus", "not valid")])
def test_missing_or_bad_access_token_is_401_with_detail(client, header, needle):
    extra = {"HTTP_X_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/projects/", **extra)
    assert response.status_code == 401
    assert needle in response.json()["detail"]


def test_expired_access_token_is_refused(api, alice):
    from accounts.models import AccessToken

    client = api(alice)
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/v1/projects/")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
