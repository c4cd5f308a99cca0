"""Docker token authentication: issuing and verifying the registry's bearer JWTs.

A token (CNCF Distribution, "Token Authentication Implementation") is a JWS signed ES256 or
RS256 with header `{"alg", "typ": "JWT", "kid"}` and claims `iss`, `sub` (empty for anonymous),
`aud` (the service), `exp`, `nbf`, `iat`, `jti` and `access`: a list of
`{"type", "name", "actions"}` holding only what was granted.

Verification refuses anything but ES256/RS256 from a known `kid` whose key has that algorithm, so
neither `alg: none` nor an HMAC keyed with a public key can pass. A verified token is cached until
its `exp`, so checking it again on every request of a pull costs a dict lookup.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.scopes import ResourceActions
from seawall.services.keys import KeyFileError, KeysUnusable, SigningKeys

ALGORITHMS = frozenset({"ES256", "RS256"})
# Tolerated clock difference on `exp`, `nbf` and `iat`.
CLOCK_SKEW_SECONDS = 5
# Distribution: "a token should never be returned with less than 60 seconds to live".
MIN_TTL_SECONDS = 60
# Far above any token Seawall issues; refused before any parsing.
MAX_TOKEN_LENGTH = 16 * 1024
CACHE_SIZE = 10_000
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"]


class TokenError(Exception):
    """A bearer token that is not accepted; `reason` says why (for logs and the error detail)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownKey(TokenError):
    """The token names a key this process has not loaded (perhaps one added since)."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"unknown kid {kid[:64]!r}")
        self.kid = kid


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The token endpoint's answer: `token`, `expires_in` seconds, `issued_at` (RFC 3339 UTC)."""

    token: str
    expires_in: int
    issued_at: str


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: who, what they may do, until when."""

    subject: str
    access: tuple[ResourceActions, ...]
    exp: float
    jti: str


class TokenIssuer:
    def __init__(
        self, keys: SigningKeys, issuer: str, ttl_seconds: int, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if ttl_seconds < MIN_TTL_SECONDS:
            raise ValueError(f"token lifetime {ttl_seconds}s is under {MIN_TTL_SECONDS}s")
        self.keys = keys
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def issue(
        self,
        subject: str,
        audience: str,
        access: list[ResourceActions],
        now: float | None = None,
    ) -> IssuedToken:
        """Sign a token for `subject` ("" when anonymous) holding exactly `access`."""
        issued = int(self.clock.now() if now is None else now)
        key = self.keys.current
        signer = key.signer()
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": issued + self.ttl_seconds,
            "nbf": issued,
            "iat": issued,
            "jti": secrets.token_urlsafe(24),
            "access": [entry.to_claim() for entry in access],
        }
        token = jwt.encode(
            claims,
            signer,
            algorithm=key.algorithm,
            headers={"typ": "JWT", "kid": key.kid},
        )
        return IssuedToken(
            token=token,
            expires_in=self.ttl_seconds,
            issued_at=datetime.fromtimestamp(issued, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


class TokenVerifier:
    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        audience: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self._cache_size = cache_size
        self._cache: dict[str, Claims] = {}
        self._generation = keys.generation

    async def check(self, token: str) -> Claims:
        """`verify`, re-reading the keys (at most every few seconds) when the token names one
        this process does not know: a key another process or node added since."""
        try:
            return self.verify(token)
        except UnknownKey as unknown:
            try:
                found = await self.keys.find(unknown.kid)
            except (KeyFileError, KeysUnusable) as error:
                reason = f"{unknown.reason} (the keys could not be read: {error})"
                raise TokenError(reason) from None
            if found is None:
                raise
        return self.verify(token)

    def verify(self, token: str) -> Claims:
        """The token's claims, or TokenError saying why it is refused, with the keys loaded
        now (`UnknownKey` for a kid they lack)."""
        now = self.clock.now()
        if self._generation != self.keys.generation:
            # A key was retired (or added): tokens it signed must not pass from the cache.
            self._cache.clear()
            self._generation = self.keys.generation
        cached = self._cache.get(token)
        if cached is not None:
            if cached.exp > now - CLOCK_SKEW_SECONDS:
                return cached
            self._cache.pop(token, None)
            raise TokenError("token has expired")
        claims = self._verify(token, now)
        self._remember(token, claims)
        return claims

    def _verify(self, token: str, now: float) -> Claims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(f"token is longer than {MAX_TOKEN_LENGTH} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TokenError(f"malformed token: {error}") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenError(f"algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token header has no kid")
        key = self.keys.get(kid)
        if key is None:
            raise UnknownKey(kid)
        if key.algorithm != algorithm:
            raise TokenError(f"key {kid!r} signs {key.algorithm}, not {algorithm}")
        try:
            payload = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                # Times are checked below against this verifier's clock.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError("bad signature") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"token is not for audience {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise TokenError(f"token is not issued by {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(f"token has no {error.claim!r} claim") from None
        except jwt.PyJWTError as error:
            raise TokenError(f"invalid token: {error}") from None
        return _claims(payload, now)

    def _remember(self, token: str, claims: Claims) -> None:
        if len(self._cache) >= self._cache_size:
            # Every token has the same lifetime, so the oldest entry is about the first to expire.
            # (Suppressed: the cache emptied or changed under us in another thread.)
            with contextlib.suppress(StopIteration, RuntimeError):
                self._cache.pop(next(iter(self._cache)), None)
        self._cache[token] = claims


def granted(claims: Claims, type: str, name: str, action: str) -> bool:
    """Whether the token grants `action` on resource `type`/`name` (e.g. repository, a/b, push)."""
    return any(
        entry.type == type and entry.name == name and action in entry.actions
        for entry in claims.access
    )


def _claims(payload: Mapping[str, Any], now: float) -> Claims:
    times: dict[str, float] = {}
    for claim in ("exp", "nbf", "iat"):
        value = payload[claim]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TokenError(f"claim {claim!r} is not a number")
        times[claim] = value
    if times["exp"] <= now - CLOCK_SKEW_SECONDS:
        raise TokenError("token has expired")
    if times["nbf"] > now + CLOCK_SKEW_SECONDS:
        raise TokenError("token is not valid yet")
    if times["iat"] > now + CLOCK_SKEW_SECONDS:
        raise TokenError("token is issued in the future")
    subject, jti = payload["sub"], payload["jti"]
    if not isinstance(subject, str) or not isinstance(jti, str):
        raise TokenError("claims 'sub' and 'jti' must be strings")
    return Claims(subject=subject, access=_access(payload["access"]), exp=times["exp"], jti=jti)


def _access(value: object) -> tuple[ResourceActions, ...]:
    if not isinstance(value, list):
        raise TokenError("claim 'access' is not a list")
    entries = []
    for entry in value:
        if not isinstance(entry, dict):
            raise TokenError("an 'access' entry is not an object")
        resource_type, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if not isinstance(resource_type, str) or not isinstance(name, str):
            raise TokenError("an 'access' entry lacks a string 'type' or 'name'")
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise TokenError("an 'access' entry's 'actions' is not a list of strings")
        entries.append(ResourceActions(resource_type, name, tuple(actions)))
    return tuple(entries)
