"""JWT login, refresh and logout against API.md: answer shapes, claims, expiry, forged tokens, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from django.conf import settings
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from tests.accounts.conftest import LOGIN, LOGOUT, PROTECTED, REFRESH, b64, bearer, decode, events, signing_key
from tests.conftest import PASSWORDS, login

pytestmark = pytest.mark.django_db


def _refresh(token: str) -> object:
    return APIClient().post(REFRESH, {"refresh_token": token}, format="json")


# --- login ------------------------------------------------------------------------------------------------


def test_login_answers_the_token_pair_of_api_md(api: APIClient, trader: User) -> None:
    response = api.post(LOGIN, {"username": "trader1", "password": PASSWORDS["TRADER"]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    access = decode(body["access_token"])
    assert access["sub"] == "trader1"
    assert str(access["user_id"]) == str(trader.pk)
    assert access["role"] == "TRADER"
    assert access["token_type"] == "access"
    assert 1799 <= access["exp"] - access["iat"] <= 1800  # both whole seconds, taken a moment apart
    refresh = decode(body["refresh_token"])
    assert refresh["token_type"] == "refresh"
    assert access["sid"] == refresh["jti"]
    assert events("LOGIN_SUCCEEDED", actor_username="trader1") == 1


def test_passwords_are_hashed_with_argon2(trader: User) -> None:
    assert trader.password.startswith("argon2")


@pytest.mark.parametrize(
    "username,password",
    [("trader1", "wrong-password"), ("nobody", "whatever"), ("trader1", PASSWORDS["TRADER"].upper())],
)
def test_bad_credentials_answer_401_with_one_message(
    api: APIClient, trader: User, username: str, password: str
) -> None:
    response = api.post(LOGIN, {"username": username, "password": password}, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password", "code": "authentication_failed"}
    assert "access_token" not in response.json()
    assert events("LOGIN_FAILED") == 1
    assert events("LOGIN_SUCCEEDED") == 0


def test_inactive_user_cannot_log_in_with_the_right_password(api: APIClient, trader: User) -> None:
    services.user_deactivate(actor=None, user=trader, reason="left the firm")

    response = api.post(LOGIN, {"username": "trader1", "password": PASSWORDS["TRADER"]}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "Incorrect username or password"


def test_login_with_missing_fields_is_400_naming_each_field(api: APIClient) -> None:
    response = api.post(LOGIN, {}, format="json")

    assert response.status_code == 400
    assert {entry["field"] for entry in response.json()["detail"]} == {"username", "password"}


# --- access tokens that must be refused ---------------------------------------------------------------------


def test_missing_or_malformed_authorization_is_401(trader: User) -> None:
    assert APIClient().get(PROTECTED).status_code == 401
    assert bearer("not-a-jwt").get(PROTECTED).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic dHJhZGVyMTp4")
    assert client.get(PROTECTED).status_code == 401


def test_access_token_works_until_it_expires_after_30_minutes(api: APIClient, trader: User) -> None:
    access = login(api, "trader1", PASSWORDS["TRADER"])["access_token"]
    issued = datetime.fromtimestamp(decode(access)["iat"], tz=UTC)

    with time_machine.travel(issued + timedelta(minutes=29, seconds=50), tick=False):
        assert bearer(access).get(PROTECTED).status_code == 200
    with time_machine.travel(issued + timedelta(minutes=30, seconds=1), tick=False):
        response = bearer(access).get(PROTECTED)
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_with_a_past_exp_signed_with_the_real_key_is_401(api: APIClient, trader: User) -> None:
    claims = decode(login(api, "trader1", PASSWORDS["TRADER"])["access_token"])
    claims["exp"] = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())
    expired = jwt.encode(claims, signing_key(), algorithm="HS256")

    assert bearer(expired).get(PROTECTED).status_code == 401
    assert events("TOKEN_REFUSED") == 1


def test_tampered_token_is_401(api: APIClient, trader: User, compliance: User) -> None:
    access = login(api, "trader1", PASSWORDS["TRADER"])["access_token"]
    header, payload, signature = access.split(".")
    claims = decode(access)
    # Claim to be the compliance officer, keeping trader1's signature.
    forged = ".".join([header, b64({**claims, "user_id": str(compliance.pk), "role": "COMPLIANCE"}), signature])
    # Flip one signature character.
    flipped = ".".join([header, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])

    assert bearer(access).get("/api/v1/audit/events").status_code == 403
    assert bearer(forged).get("/api/v1/audit/events").status_code == 401
    assert bearer(flipped).get(PROTECTED).status_code == 401
    assert events("TOKEN_REFUSED") == 2


def test_alg_none_token_is_401(api: APIClient, trader: User) -> None:
    claims = decode(login(api, "trader1", PASSWORDS["TRADER"])["access_token"])
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    # The same, as PyJWT itself would write it.
    unsigned_pyjwt = jwt.encode(claims, key=None, algorithm="none")

    for token in (unsigned, unsigned_pyjwt, unsigned[:-1]):
        response = bearer(token).get(PROTECTED)
        assert response.status_code == 401, token
        assert response.json()["detail"] == "Invalid or expired token"


def test_token_signed_with_another_key_or_algorithm_is_401(api: APIClient, trader: User) -> None:
    claims = decode(login(api, "trader1", PASSWORDS["TRADER"])["access_token"])
    wrong_key = jwt.encode(claims, "some-other-key-of-sufficient-length-0123456789", algorithm="HS256")
    other_alg = jwt.encode(claims, signing_key(), algorithm="HS384")

    assert bearer(wrong_key).get(PROTECTED).status_code == 401
    assert bearer(other_alg).get(PROTECTED).status_code == 401
    refused = events("TOKEN_REFUSED")
    assert refused == 2


def test_refresh_token_is_not_accepted_as_an_access_token(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])

    assert bearer(tokens["refresh_token"]).get(PROTECTED).status_code == 401
    assert bearer(tokens["access_token"]).get(PROTECTED).status_code == 200


def test_token_without_a_session_claim_is_401(api: APIClient, trader: User) -> None:
    claims = decode(login(api, "trader1", PASSWORDS["TRADER"])["access_token"])
    del claims["sid"]

    assert bearer(jwt.encode(claims, signing_key(), algorithm="HS256")).get(PROTECTED).status_code == 401


def test_refused_token_is_recorded_with_path_and_address(trader: User) -> None:
    bearer("garbage.token.here").get(PROTECTED, REMOTE_ADDR="10.9.8.7")

    from audit.models import Event

    event = Event.objects.get(event_type="TOKEN_REFUSED")
    assert event.payload["path"] == PROTECTED
    assert event.address == "10.9.8.7"


# --- refresh ------------------------------------------------------------------------------------------------


def test_refresh_answers_a_new_access_token(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])

    response = _refresh(tokens["refresh_token"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    claims = decode(body["access_token"])
    assert claims["sub"] == "trader1" and claims["role"] == "TRADER"
    assert claims["jti"] != decode(tokens["access_token"])["jti"]
    assert claims["sid"] == decode(tokens["refresh_token"])["jti"]
    assert bearer(body["access_token"]).get(PROTECTED).status_code == 200
    assert events("TOKEN_REFRESHED", actor_username="trader1") == 1


def test_refresh_with_an_access_token_or_garbage_is_401(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])

    for token in (tokens["access_token"], "garbage", tokens["refresh_token"][:-2]):
        response = _refresh(token)
        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"


def test_refresh_token_expires(api: APIClient, trader: User) -> None:
    refresh = login(api, "trader1", PASSWORDS["TRADER"])["refresh_token"]

    with time_machine.travel(datetime.now(UTC) + settings.REFRESH_TOKEN_LIFETIME + timedelta(seconds=5)):
        assert _refresh(refresh).status_code == 401


# --- logout and deactivation ----------------------------------------------------------------------------------


def test_logout_revokes_both_tokens(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])
    client = bearer(tokens["access_token"])

    response = client.post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json")

    assert response.status_code == 200
    assert "message" in response.json()
    assert client.get(PROTECTED).status_code == 401
    assert _refresh(tokens["refresh_token"]).status_code == 401
    assert client.post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json").status_code == 401
    assert events("LOGGED_OUT", actor_username="trader1") == 1


def test_logout_also_ends_access_tokens_refreshed_earlier_in_the_session(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])
    refreshed = _refresh(tokens["refresh_token"]).json()["access_token"]
    other_session = login(APIClient(), "trader1", PASSWORDS["TRADER"])

    bearer(tokens["access_token"]).post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json")

    assert bearer(refreshed).get(PROTECTED).status_code == 401
    # Another login of the same user is another session: it goes on.
    assert bearer(other_session["access_token"]).get(PROTECTED).status_code == 200
    assert _refresh(other_session["refresh_token"]).status_code == 200


def test_logout_with_someone_elses_refresh_token_is_refused(api: APIClient, trader: User, trader2: User) -> None:
    mine = login(api, "trader1", PASSWORDS["TRADER"])
    theirs = login(APIClient(), "trader2", PASSWORDS["TRADER"])

    response = bearer(mine["access_token"]).post(LOGOUT, {"refresh_token": theirs["refresh_token"]}, format="json")

    assert response.status_code == 401
    assert _refresh(theirs["refresh_token"]).status_code == 200
    assert bearer(mine["access_token"]).get(PROTECTED).status_code == 200


def test_logout_needs_an_access_token(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])

    response = APIClient().post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json")

    assert response.status_code == 401
    assert _refresh(tokens["refresh_token"]).status_code == 200


def test_deactivated_user_is_refused_at_once(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])
    refreshed = _refresh(tokens["refresh_token"]).json()["access_token"]
    assert bearer(tokens["access_token"]).get(PROTECTED).status_code == 200

    services.user_deactivate(actor=None, user=trader, reason="test")

    assert bearer(tokens["access_token"]).get(PROTECTED).status_code == 401
    assert bearer(refreshed).get(PROTECTED).status_code == 401
    assert _refresh(tokens["refresh_token"]).status_code == 401
    assert events("USER_DEACTIVATED") == 1


def test_tokens_from_before_a_deactivation_stay_dead_after_reactivation(api: APIClient, trader: User) -> None:
    tokens = login(api, "trader1", PASSWORDS["TRADER"])
    services.user_deactivate(actor=None, user=trader, reason="suspended")

    services.user_reactivate(actor=None, user=trader)

    assert bearer(tokens["access_token"]).get(PROTECTED).status_code == 401
    assert _refresh(tokens["refresh_token"]).status_code == 401
    fresh = login(APIClient(), "trader1", PASSWORDS["TRADER"])
    assert bearer(fresh["access_token"]).get(PROTECTED).status_code == 200


def test_a_token_used_again_is_decoded_once_and_still_refused_once_revoked_or_its_user_deactivated(
    api: APIClient, trader: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The signature check is remembered per token (accounts.authentication.VerifiedOnceAccessToken); what can
    # change is checked on every request: a logout's revocation, a deactivation, the expiry (test above).
    tokens = login(api, "trader1", PASSWORDS["TRADER"])
    access = tokens["access_token"]
    decodes = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1) or real(*a, **k))
    for _ in range(3):
        assert bearer(access).get(PROTECTED).status_code == 200
    assert len(decodes) == 1
    header, payload, signature = access.split(".")
    flipped = ".".join([header, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    assert bearer(flipped).get(PROTECTED).status_code == 401  # another token: verified, and refused

    User.objects.filter(pk=trader.pk).update(is_active=False)
    assert bearer(access).get(PROTECTED).status_code == 401
    User.objects.filter(pk=trader.pk).update(is_active=True)
    assert bearer(access).get(PROTECTED).status_code == 200
    assert bearer(access).post(LOGOUT, {"refresh_token": tokens["refresh_token"]}, format="json").status_code == 200
    assert bearer(access).get(PROTECTED).status_code == 401
