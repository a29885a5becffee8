"""Password guessing is throttled: per account, per address, on the sign-in page and the admin's; token
endpoints are rate limited per address. The counters are the shared cache's (see tests/conftest.py)."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

LOCKED = "signing in is locked for"


@pytest.fixture
def limits(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


def sign_in(client: Client, username: str, password: str, *, path="/accounts/login/", address="10.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def guess(username: str, times: int, *, path="/accounts/login/", address="10.0.0.1") -> list[int]:
    return [sign_in(Client(), username, f"guess-{n}", path=path, address=address).status_code for n in range(times)]


def test_wrong_passwords_then_the_right_one_is_refused_with_the_lock_message(alice, limits):
    statuses = guess("alice", 5)
    assert statuses[:4] == [200] * 4, "the first failures show the form again"
    assert statuses[4] == 429, "the failure that reaches the limit locks"

    client = Client()
    response = sign_in(client, "alice", "alice-pass-123")
    assert response.status_code == 429
    assert LOCKED in response.content.decode() and "15 minutes" in response.content.decode()
    assert int(response["Retry-After"]) == 15 * 60
    assert not signed_in(client)


def test_an_account_is_locked_whatever_address_the_guesses_come_from(alice, limits):
    for n in range(5):
        sign_in(Client(), "alice", "wrong", address=f"10.0.1.{n}")
    client = Client()
    response = sign_in(client, "alice", "alice-pass-123", address="10.0.2.1")
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert not signed_in(client)


def test_the_admin_sign_in_is_locked_too(alice, limits):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    guess("alice", 5, path="/admin/login/")
    client = Client()
    response = sign_in(client, "alice", "alice-pass-123", path="/admin/login/")
    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert client.get("/admin/").status_code == 302, "not signed in to the admin"


def test_an_address_that_guessed_too_often_is_locked_for_every_account(alice, bob, limits):
    for n in range(5):
        guess(f"nobody-{n}", 1, address="10.0.3.1")
    from_there, from_elsewhere = Client(), Client()
    refused = sign_in(from_there, "bob", "bob-pass-123", address="10.0.3.1")
    assert refused.status_code == 429 and LOCKED in refused.content.decode()
    assert not signed_in(from_there)
    assert sign_in(from_elsewhere, "bob", "bob-pass-123", address="10.0.3.2").status_code == 302
    assert signed_in(from_elsewhere)


def test_the_lock_lifts_after_the_cool_off(alice, limits):
    # long enough that the refused sign-in, a password check of its own, ends within it on a loaded machine
    limits.AXES_COOLOFF_TIME = timedelta(seconds=5)
    guess("alice", 5)
    assert sign_in(Client(), "alice", "alice-pass-123").status_code == 429
    time.sleep(6.5)  # counters expire in the cache, on Redis' clock
    client = Client()
    assert sign_in(client, "alice", "alice-pass-123").status_code == 302
    assert signed_in(client)


def test_a_few_mistakes_do_not_lock(alice, limits):
    guess("alice", 4)
    client = Client()
    assert sign_in(client, "alice", "alice-pass-123").status_code == 302
    assert signed_in(client)


@pytest.mark.parametrize(
    "path,body,scope",
    [
        ("/api/v1/oauth/device/token/", {"device_authorization_code": "AAAA-BBBB-CCCC-DDDD"}, "token-exchange"),
        ("/api/v1/oauth/device/access-token/", {"refresh_token": "acr_not-a-token"}, "token-refresh"),
    ],
)
def test_token_endpoints_answer_429_past_their_rate(settings, path, body, scope):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {scope: "3/min"}}
    client = APIClient(REMOTE_ADDR="10.0.4.1")
    statuses = [client.post(path, body, format="json").status_code for _ in range(3)]
    assert 429 not in statuses
    refused = client.post(path, body, format="json")
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert "Too many token requests" in detail and "Expected available in" in detail, detail
    assert 0 < int(refused["Retry-After"]) <= 60
    other = APIClient(REMOTE_ADDR="10.0.4.2").post(path, body, format="json")
    assert other.status_code != 429, "the rate is per address"


def test_token_endpoints_have_a_rate_by_default(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates["token-exchange"] and rates["token-refresh"]
