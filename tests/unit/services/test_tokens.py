"""Bearer tokens: issuing, verifying, the verification cache, and the attacks they must refuse."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from seawall.domain.scopes import ResourceActions, parse_scope, parse_scopes
from seawall.services.keys import SigningKeys
from seawall.services.tokens import (
    CLOCK_SKEW_SECONDS,
    Claims,
    TokenError,
    TokenIssuer,
    TokenVerifier,
    granted,
)
from tests.support.clock import FakeClock

ISSUER = "seawall-token-service"
SERVICE = "registry.example.test"
TTL = 300
NOW = 1_750_000_000.0


@pytest.fixture
def keys() -> SigningKeys:
    return SigningKeys.generated()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def issuer(keys: SigningKeys) -> TokenIssuer:
    return TokenIssuer(keys, ISSUER, TTL)


@pytest.fixture
def verifier(keys: SigningKeys, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier(keys, ISSUER, SERVICE, clock=clock)


def _issue(issuer: TokenIssuer, *scopes: str, subject: str = "alice", now: float = NOW) -> str:
    return issuer.issue(subject, SERVICE, parse_scopes(scopes), now=now).token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    padded = [part + "=" * (-len(part) % 4) for part in (header, payload)]
    return (
        json.loads(base64.urlsafe_b64decode(padded[0])),
        json.loads(base64.urlsafe_b64decode(padded[1])),
        signature,
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": SERVICE,
        "exp": int(NOW) + TTL,
        "nbf": int(NOW),
        "iat": int(NOW),
        "jti": "a-unique-id",
        "access": [{"type": "repository", "name": "a", "actions": ["pull"]}],
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(keys: SigningKeys, claims: dict[str, Any], **header: Any) -> str:
    """A token signed by a trusted key, with whatever claims and header a test needs."""
    key = keys.current
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=header)


def _sign_by_hand(keys: SigningKeys, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Like `_sign` for headers PyJWT would not write."""
    signing_input = f"{_b64json(header)}.{_b64json(claims)}"
    algorithm = jwt.algorithms.get_default_algorithms()["ES256"]
    signature = algorithm.sign(signing_input.encode(), keys.current.private_key)
    return f"{signing_input}.{_b64(signature)}"


def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as raised:
        verifier.verify(token)
    return raised.value.reason


# Round trip.


def test_issue_and_verify_round_trip(
    keys: SigningKeys, issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    issued = issuer.issue(
        "alice",
        SERVICE,
        parse_scopes(["repository:team/app:pull,push", "registry:catalog:*"]),
        now=NOW + 0.75,
    )
    assert issued.expires_in == TTL
    assert issued.issued_at == "2025-06-15T15:06:40Z"

    header, payload, _ = _parts(issued.token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": keys.current.kid}
    assert payload["iss"] == ISSUER
    assert payload["sub"] == "alice"
    assert payload["aud"] == SERVICE
    assert payload["iat"] == payload["nbf"] == int(NOW)
    assert payload["exp"] == int(NOW) + TTL
    assert len(payload["jti"]) >= 32
    assert payload["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]

    claims = verifier.verify(issued.token)
    assert claims == Claims(
        subject="alice",
        access=(
            ResourceActions("repository", "team/app", ("pull", "push")),
            ResourceActions("registry", "catalog", ("*",)),
        ),
        exp=int(NOW) + TTL,
        jti=payload["jti"],
    )


def test_every_token_has_its_own_jti(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    jtis = {verifier.verify(_issue(issuer, "repository:a:pull")).jti for _ in range(20)}
    assert len(jtis) == 20


def test_anonymous_token_with_no_access(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    claims = verifier.verify(issuer.issue("", SERVICE, [], now=NOW).token)
    assert claims.subject == ""
    assert claims.access == ()


def test_an_rs256_key_signs_and_verifies(
    keys: SigningKeys, issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    rsa_key = asyncio.run(keys.rotate("RS256"))
    token = _issue(issuer, "repository:a:pull")
    header, _, _ = _parts(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == rsa_key.kid
    assert granted(verifier.verify(token), "repository", "a", "pull")


def test_a_lifetime_under_a_minute_is_refused(keys: SigningKeys) -> None:
    with pytest.raises(ValueError, match="under 60s"):
        TokenIssuer(keys, ISSUER, 59)


# Attacks.


def test_expired_token(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = _issue(issuer, "repository:a:pull", now=NOW - TTL - CLOCK_SKEW_SECONDS)
    assert _refused(verifier, token) == "token has expired"


def test_a_token_just_past_exp_is_accepted_within_the_clock_skew(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = _issue(issuer, "repository:a:pull", now=NOW - TTL - CLOCK_SKEW_SECONDS + 1)
    assert verifier.verify(token).subject == "alice"


def test_a_token_not_yet_valid(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = _issue(issuer, "repository:a:pull", now=NOW + 60)
    assert _refused(verifier, token) == "token is not valid yet"


def test_token_signed_by_another_key(verifier: TokenVerifier) -> None:
    stranger = TokenIssuer(SigningKeys.generated(), ISSUER, TTL)
    assert _refused(verifier, _issue(stranger, "repository:a:pull")).startswith("unknown kid")


def test_token_signed_by_another_key_claiming_a_trusted_kid(
    keys: SigningKeys, verifier: TokenVerifier
) -> None:
    stranger = SigningKeys.generated().current
    token = jwt.encode(
        _claims(), stranger.private_key, algorithm="ES256", headers={"kid": keys.current.kid}
    )
    assert _refused(verifier, token) == "bad signature"


@pytest.mark.parametrize("algorithm", ["none", "None", "NONE"])
def test_alg_none(keys: SigningKeys, verifier: TokenVerifier, algorithm: str) -> None:
    header = {"alg": algorithm, "typ": "JWT", "kid": keys.current.kid}
    token = f"{_b64json(header)}.{_b64json(_claims())}."
    assert _refused(verifier, token) == f"algorithm {algorithm!r} is not accepted"


def test_alg_none_without_kid(verifier: TokenVerifier) -> None:
    token = f"{_b64json({'alg': 'none'})}.{_b64json(_claims())}."
    assert _refused(verifier, token) == "algorithm 'none' is not accepted"


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_the_public_key(
    keys: SigningKeys, verifier: TokenVerifier, algorithm: str
) -> None:
    public_pem = keys.current.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": algorithm, "typ": "JWT", "kid": keys.current.kid}
    signing_input = f"{_b64json(header)}.{_b64json(_claims())}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    signature = hmac.new(public_pem, signing_input.encode(), digest).digest()
    token = f"{signing_input}.{_b64(signature)}"
    assert _refused(verifier, token) == f"algorithm {algorithm!r} is not accepted"


def test_algorithm_other_than_the_keys_own(keys: SigningKeys, verifier: TokenVerifier) -> None:
    header = {"alg": "RS256", "typ": "JWT", "kid": keys.current.kid}
    token = f"{_b64json(header)}.{_b64json(_claims())}.{_b64(b'x' * 256)}"
    assert _refused(verifier, token) == f"key {keys.current.kid!r} signs ES256, not RS256"


def test_token_for_another_audience(
    keys: SigningKeys, issuer: TokenIssuer, clock: FakeClock
) -> None:
    token = issuer.issue("alice", "other.example.test", [], now=NOW).token
    verifier = TokenVerifier(keys, ISSUER, SERVICE, clock=clock)
    assert _refused(verifier, token) == f"token is not for audience {SERVICE!r}"
    # The same token is good for the service it names.
    assert TokenVerifier(keys, ISSUER, "other.example.test", clock=clock).verify(token)


def test_token_with_a_list_audience_naming_us(keys: SigningKeys, verifier: TokenVerifier) -> None:
    token = _sign(keys, _claims(aud=["elsewhere", SERVICE]), kid=keys.current.kid)
    assert verifier.verify(token).subject == "alice"


def test_token_from_another_issuer(keys: SigningKeys, verifier: TokenVerifier) -> None:
    token = _issue(TokenIssuer(keys, "someone-else", TTL), "repository:a:pull")
    assert _refused(verifier, token) == f"token is not issued by {ISSUER!r}"


def test_kid_missing(keys: SigningKeys, verifier: TokenVerifier) -> None:
    assert _refused(verifier, _sign(keys, _claims())) == "token header has no kid"


@pytest.mark.parametrize("kid", ["", 42, None])
def test_kid_not_a_string(keys: SigningKeys, verifier: TokenVerifier, kid: object) -> None:
    token = _sign_by_hand(keys, {"alg": "ES256", "typ": "JWT", "kid": kid}, _claims())
    reason = _refused(verifier, token)
    # PyJWT itself refuses a kid that is not a string when reading the header.
    assert reason == "token header has no kid" or reason.startswith("malformed token")


def test_kid_unknown(keys: SigningKeys, verifier: TokenVerifier) -> None:
    token = _sign(keys, _claims(), kid="no-such-key")
    assert _refused(verifier, token) == "unknown kid 'no-such-key'"


def test_tampered_payload(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    header, payload, signature = issuer.issue(
        "alice", SERVICE, [parse_scope("repository:a:pull")], now=NOW
    ).token.split(".")
    claims = _parts(f"{header}.{payload}.{signature}")[1]
    claims["access"][0]["actions"] = ["pull", "push", "delete"]
    assert _refused(verifier, f"{header}.{_b64json(claims)}.{signature}") == "bad signature"


def test_tampered_header(keys: SigningKeys, issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    _, payload, signature = _issue(issuer, "repository:a:pull").split(".")
    header = {"alg": "ES256", "typ": "JWT", "kid": keys.current.kid, "x": 1}
    assert _refused(verifier, f"{_b64json(header)}.{payload}.{signature}") == "bad signature"


def test_signature_stripped(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    header, payload, _ = _issue(issuer, "repository:a:pull").split(".")
    assert _refused(verifier, f"{header}.{payload}.") == "bad signature"


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"])
def test_missing_claims(keys: SigningKeys, verifier: TokenVerifier, claim: str) -> None:
    token = _sign(keys, _claims(**{claim: None}), kid=keys.current.kid)
    assert _refused(verifier, token) == f"token has no {claim!r} claim"


@pytest.mark.parametrize(
    ("access", "complaint"),
    [
        ("repository:a:pull", "claim 'access' is not a list"),
        ({"type": "repository", "name": "a", "actions": ["pull"]}, "claim 'access' is not a list"),
        (["repository:a:pull"], "an 'access' entry is not an object"),
        ([{"name": "a", "actions": ["pull"]}], "lacks a string 'type' or 'name'"),
        ([{"type": "repository", "name": 1, "actions": ["pull"]}], "lacks a string"),
        ([{"type": "repository", "name": "a"}], "'actions' is not a list of strings"),
        ([{"type": "repository", "name": "a", "actions": "pull"}], "is not a list of strings"),
        ([{"type": "repository", "name": "a", "actions": [1]}], "is not a list of strings"),
    ],
)
def test_malformed_access(
    keys: SigningKeys, verifier: TokenVerifier, access: object, complaint: str
) -> None:
    token = _sign(keys, _claims(access=access), kid=keys.current.kid)
    assert complaint in _refused(verifier, token)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["1750000300", True, [1]])
def test_times_that_are_not_numbers(
    keys: SigningKeys, verifier: TokenVerifier, claim: str, value: object
) -> None:
    token = _sign(keys, _claims(**{claim: value}), kid=keys.current.kid)
    with pytest.raises(TokenError):
        verifier.verify(token)


def test_issued_in_the_future(keys: SigningKeys, verifier: TokenVerifier) -> None:
    token = _sign(keys, _claims(iat=int(NOW) + 3600), kid=keys.current.kid)
    assert _refused(verifier, token) == "token is issued in the future"


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b", "a.b.c", "a.b.c.d", "....", "x" * 20_000, "é.é.é"]
)
def test_garbage_is_refused(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(TokenError):
        verifier.verify(token)


# What a token grants.


def test_a_token_for_repository_a_does_not_grant_b(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    claims = verifier.verify(_issue(issuer, "repository:team/a:pull,push"))
    assert granted(claims, "repository", "team/a", "pull")
    assert granted(claims, "repository", "team/a", "push")
    assert not granted(claims, "repository", "team/b", "pull")
    assert not granted(claims, "repository", "team/a/b", "pull")
    assert not granted(claims, "repository", "team", "pull")
    assert not granted(claims, "registry", "team/a", "pull")


def test_a_pull_token_does_not_grant_push(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    claims = verifier.verify(_issue(issuer, "repository:a:pull"))
    assert granted(claims, "repository", "a", "pull")
    assert not granted(claims, "repository", "a", "push")
    assert not granted(claims, "repository", "a", "delete")
    assert not granted(claims, "repository", "a", "*")


def test_catalog_is_granted_only_by_its_own_scope(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    with_catalog = verifier.verify(_issue(issuer, "registry:catalog:*"))
    assert granted(with_catalog, "registry", "catalog", "*")
    everything_on_a = verifier.verify(_issue(issuer, "repository:a:*"))
    assert granted(everything_on_a, "repository", "a", "delete")
    assert not granted(everything_on_a, "registry", "catalog", "*")


def test_an_empty_grant_grants_nothing(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("alice", SERVICE, [ResourceActions("repository", "a", ())], now=NOW).token
    assert not granted(verifier.verify(token), "repository", "a", "pull")


# The verification cache.


def test_a_repeated_verify_is_served_from_the_cache(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = _issue(issuer, "repository:a:pull")
    assert verifier.verify(token) is verifier.verify(token)


def test_a_cached_token_past_its_expiry_is_refused(
    issuer: TokenIssuer, verifier: TokenVerifier, clock: FakeClock
) -> None:
    token = _issue(issuer, "repository:a:pull")
    verifier.verify(token)
    clock.set(NOW + TTL + CLOCK_SKEW_SECONDS - 1)
    assert verifier.verify(token).subject == "alice"
    clock.set(NOW + TTL + CLOCK_SKEW_SECONDS)
    assert _refused(verifier, token) == "token has expired"
    # Dropped from the cache, it is refused by full verification too.
    assert _refused(verifier, token) == "token has expired"


def test_failures_are_not_cached(keys: SigningKeys, verifier: TokenVerifier) -> None:
    token = _sign(keys, _claims(), kid="later")
    for _ in range(2):
        assert _refused(verifier, token) == "unknown kid 'later'"


def test_the_cache_is_bounded(keys: SigningKeys, issuer: TokenIssuer, clock: FakeClock) -> None:
    verifier = TokenVerifier(keys, ISSUER, SERVICE, clock=clock, cache_size=3)
    tokens = [_issue(issuer, f"repository:r{i}:pull") for i in range(5)]
    first = [verifier.verify(token) for token in tokens]
    # The two oldest were evicted and are verified afresh; the newest are still cached.
    assert verifier.verify(tokens[0]) is not first[0]
    assert verifier.verify(tokens[4]) is first[4]
    assert verifier.verify(tokens[0]) == first[0]


# Rotation.


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    keys: SigningKeys, issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    old_kid = keys.current.kid
    before = _issue(issuer, "repository:a:pull")
    new_kid = asyncio.run(keys.rotate()).kid
    after = _issue(issuer, "repository:a:pull")

    assert new_kid != old_kid
    assert _parts(before)[0]["kid"] == old_kid
    assert _parts(after)[0]["kid"] == new_kid
    assert verifier.verify(before).subject == "alice"
    assert verifier.verify(after).subject == "alice"
