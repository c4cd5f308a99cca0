"""The keys that sign and verify bearer tokens (and, with another purpose, promotion receipts):
held in the database (`signing_keys`, db/signing_keys.py), so that every process on every node
signs and verifies with the same set, and loaded into memory here.

- **First use.** `ready()` settles the table once per process, under the table's lock: key
  files an earlier release left in the data directory (`DATA_DIR/keys/*.pem`, or
  `receipt-keys/`) that the table lacks are imported (into an empty table as they were, the
  newest file signing; else as keys that only verify), and a table with no key gets a new ES256
  one. Processes starting together on several nodes thus agree on one key.
- **Signing** uses the key with the greatest `signs_from`; every key not retired verifies.
  Rotation (`rotate`, `seawall signing-key rotate`) adds a key that signs from now on; retiring
  one (`retire`) stops it verifying.
- **Other processes learn of changes** when they meet a token whose `kid` they do not know (a
  re-read, at most once per `RELOAD_INTERVAL_SECONDS`), and by re-reading every
  `REFRESH_SECONDS` (the server's lifespan does), so a rotation reaches every node's signing
  within that, and a retirement every node's verifying.
- **Private keys at rest** are PKCS#8 PEM, encrypted with `signing_key_passphrase` when it is
  set (PBES2: PBKDF2-SHA256 and AES-256-CBC, as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes
  them). Public keys are stored in clear, so verifying never needs the passphrase; only a key
  that signs is decrypted. A process that cannot decrypt the newest key signs with the newest
  one it can (and says so): a passphrase change rolls out node by node.

A key's `kid` is its RFC 7638 JWK thumbprint: base64url(SHA-256) of the canonical JSON of the
public JWK's required members.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from seawall.db.signing_keys import KeyChange, SigningKeyStore, StoredKey
from seawall.db.store import LISTENING, Trailer
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from seawall.services.audit import AuditLog

log = structlog.get_logger("seawall.keys")

Algorithm = Literal["ES256", "RS256"]
Purpose = Literal["tokens", "receipts"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

MIN_RSA_BITS = 2048
RELOAD_INTERVAL_SECONDS = 5.0
REFRESH_SECONDS = 30.0
_RSA_PUBLIC_EXPONENT = 65537


class KeyFileError(ValueError):
    """A key (a file of an earlier release, or a row) is not a usable signing key."""


class KeysUnusable(Exception):
    """No key this process can sign with: the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key. Keys are equal when kid and algorithm are (key objects never are)."""

    kid: str
    algorithm: Algorithm
    public_key: PublicKey = field(compare=False, repr=False)
    # None: not decrypted here (a key that only verifies, or one this passphrase cannot open).
    private_key: PrivateKey | None = field(default=None, compare=False, repr=False)
    source: str = field(default="", compare=False)

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK, with `kid`, `alg` and `use`, for publishing."""
        return {
            **_jwk_members(self.public_key),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }

    def signer(self) -> PrivateKey:
        if self.private_key is None:
            raise KeysUnusable(f"key {self.kid} cannot sign here: its private key is not loaded")
        return self.private_key


def jwk_thumbprint(public_key: PublicKey) -> str:
    """RFC 7638: the members sorted, no whitespace, SHA-256, base64url without padding."""
    canonical = json.dumps(_jwk_members(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def key_of(private_key: object, where: str) -> SigningKey:
    """A private key as a `SigningKey`; KeyFileError naming `where` if it cannot sign tokens."""
    algorithm: Algorithm
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise KeyFileError(f"{where}: EC key on {private_key.curve.name}; ES256 needs P-256")
        algorithm = "ES256"
    elif isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            raise KeyFileError(
                f"{where}: RSA key of {private_key.key_size} bits; at least {MIN_RSA_BITS} needed"
            )
        algorithm = "RS256"
    else:
        raise KeyFileError(f"{where}: {type(private_key).__name__} is neither EC P-256 nor RSA")
    public = private_key.public_key()
    return SigningKey(jwk_thumbprint(public), algorithm, public, private_key, where)


def load_key(path: Path) -> SigningKey:
    """Read one unencrypted PEM private key file. Raises KeyFileError naming the file and the
    fault."""
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({error})") from None
    return key_of(private_key, str(path))


def generate(algorithm: Algorithm = "ES256") -> SigningKey:
    private_key: PrivateKey
    if algorithm == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    else:
        private_key = rsa.generate_private_key(_RSA_PUBLIC_EXPONENT, 3072)
    return key_of(private_key, "generated")


class SigningKeys:
    """The keys of one purpose, loaded from the database (`store`), or held only in memory
    (`SigningKeys.generated`, for tools and tests)."""

    def __init__(
        self,
        store: SigningKeyStore | None,
        purpose: Purpose = "tokens",
        *,
        legacy_dir: Path | None = None,
        passphrase: str | None = None,
        audit: AuditLog | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.purpose = purpose
        self.legacy_dir = legacy_dir  # where an earlier release kept this purpose's key files
        self.passphrase = passphrase.encode() if passphrase is not None else None
        self.audit = audit
        self.clock = clock  # paces re-reads (monotonic) and dates new keys (wall clock)
        self._by_kid: dict[str, SigningKey] = {}
        self._current: SigningKey | None = None
        self._read_at = float("-inf")
        self._settled = False
        self._reloading: set[asyncio.Task[None]] = set()
        # Bumped whenever the set of keys that verify changes (so caches of verified tokens
        # can drop what a retired key signed).
        self.generation = 0

    @classmethod
    def generated(
        cls, algorithm: Algorithm = "ES256", *, clock: Clock = SYSTEM_CLOCK
    ) -> SigningKeys:
        """A ring of one new key, in memory only."""
        keys = cls(None, clock=clock)
        keys._install([generate(algorithm)])
        return keys

    # -- what is loaded ---------------------------------------------------------------------

    @property
    def current(self) -> SigningKey:
        """The key new tokens are signed with."""
        if self._current is None:
            raise KeysUnusable(f"the {self.purpose} signing keys are not loaded")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    @property
    def kids(self) -> list[str]:
        return list(self._by_kid)

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every public key as a JWK Set."""
        return {"keys": [key.public_jwk() for key in self._by_kid.values()]}

    # -- reading the database ---------------------------------------------------------------

    async def ready(self) -> None:
        """Load the keys, settling the table first (import, first key, sealing) once per
        process. Raises KeyFileError for an unusable key file, KeysUnusable when no key can
        sign here."""
        if self.store is None:
            return
        await self.settle()
        if not self.loaded:
            await self.reload()

    async def settle(self) -> None:
        """Once per process: import key files of an earlier release the table lacks, make the
        first key of a new registry, seal keys stored unencrypted when a passphrase is set."""
        if self.store is None or self._settled:
            return
        found = self._files()
        seal = self._seal if self.passphrase is not None else None
        await self.store.settle(
            self.purpose, found, self._first, seal, self._recorder(Origin.system())
        )
        self._settled = True

    async def reload(self) -> None:
        """Read every key afresh. Raises (leaving the loaded keys as they were) when none can
        sign here."""
        if self.store is None:
            return
        self._read_at = self.clock.monotonic()  # first: a failing read is not retried at once
        rows = await self.store.keys(self.purpose)
        live = [row for row in rows if row.retired_at is None]
        signers = sorted(
            (row for row in live if row.signs_from is not None),
            key=lambda row: (row.signs_from or 0.0, row.kid),
        )
        if not signers:
            raise KeysUnusable(f"no {self.purpose} signing key in the database")
        keys = {row.kid: _public(row) for row in live}
        signer: SigningKey | None = None
        failures: list[str] = []
        for row in reversed(signers):
            try:
                signer = self._private(row)
                break
            except KeyFileError as error:
                failures.append(str(error))
        if signer is None:
            raise KeysUnusable(
                f"cannot decrypt any {self.purpose} signing key: {failures[0]}"
                " (is signing_key_passphrase the one the keys were stored with?)"
            )
        if failures:
            log.warning(
                "signing with an older key", purpose=self.purpose, kid=signer.kid, why=failures[0]
            )
        keys[signer.kid] = signer
        self._install(list(keys.values()), signer)

    async def find(self, kid: str) -> SigningKey | None:
        """Like `get`, but on a miss re-read the keys if they were last read a while ago (a key
        another process or node added). Raises as `reload` does."""
        key = self._by_kid.get(kid)
        if key is None and self.clock.monotonic() - self._read_at >= RELOAD_INTERVAL_SECONDS:
            await self.reload()
            key = self._by_kid.get(kid)
        return key

    async def subscribe(self) -> None:
        """Re-read the keys as soon as any process changes them (PostgreSQL notifies every
        server process; without notifications, `refresh` alone carries changes)."""
        if self.store is None:
            return
        loop = asyncio.get_running_loop()

        def changed(purpose: str | None) -> None:
            # A lost notification, or notifications back after a loss, may hide a change too.
            if purpose is None or purpose in (LISTENING, self.purpose):
                task = loop.create_task(self._reload_quietly())
                self._reloading.add(task)
                task.add_done_callback(self._reloading.discard)

        await self.store.subscribe(changed)

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except Exception:  # the periodic refresh tries again
            log.warning("signing keys not re-read", purpose=self.purpose, exc_info=True)

    async def refresh(self, max_age: float = REFRESH_SECONDS) -> None:
        """Re-read if the keys were last read more than `max_age` seconds ago."""
        if self.clock.monotonic() - self._read_at >= max_age:
            await self.reload()

    # -- changes ----------------------------------------------------------------------------

    async def rotate(
        self, algorithm: Algorithm = "ES256", origin: Origin | None = None
    ) -> SigningKey:
        """Add a new key, which signs from now on (here at once, elsewhere at their next
        re-read); the old ones keep verifying."""
        if self.purpose == "receipts" and algorithm != "ES256":
            raise KeyFileError("receipt keys are ES256 keys: DSSE envelopes are signed ECDSA P-256")
        new = generate(algorithm)
        if self.store is None:
            self._install([*self._by_kid.values(), new], new)
            return new
        if self.passphrase is None and any(
            row.encrypted and row.retired_at is None for row in await self.store.keys(self.purpose)
        ):
            raise KeysUnusable(
                f"the {self.purpose} keys are stored encrypted: give signing_key_passphrase"
                " (SEAWALL_SIGNING_KEY_PASSPHRASE) to add one, or it would be stored in clear"
            )
        stored = await self.store.add(
            self._row(new, "rotated", None),
            self.clock.now(),
            self._recorder(origin or Origin.system()),
        )
        with contextlib.suppress(KeysUnusable):  # done; this process may not sign with it
            await self.reload()
        return self._by_kid.get(stored.kid) or new

    async def retire(self, kid: str, origin: Origin | None = None) -> StoredKey | None:
        """Retire a key in force; None when there is none by that kid. Raises
        `LastSigningKey` when nothing else could sign."""
        assert self.store is not None, "a ring held in memory has nothing to retire"
        retired = await self.store.retire(
            self.purpose, kid, self.clock.now(), self._recorder(origin or Origin.system())
        )
        with contextlib.suppress(KeysUnusable):  # done; this process may not sign any more
            await self.reload()
        return retired

    async def listing(self) -> list[dict[str, object]]:
        """Every key of this purpose, retired ones too, for `seawall signing-key list`."""
        assert self.store is not None
        rows = await self.store.keys(self.purpose)
        signing = max(
            (r for r in rows if r.retired_at is None and r.signs_from is not None),
            key=lambda r: (r.signs_from or 0.0, r.kid),
            default=None,
        )
        return [
            {
                "purpose": row.purpose,
                "kid": row.kid,
                "algorithm": row.algorithm,
                "state": (
                    "retired"
                    if row.retired_at is not None
                    else "signing"
                    if signing is not None and row.kid == signing.kid
                    else "verifying"
                ),
                "encrypted": row.encrypted,
                "created_at": row.created_at,
                "retired_at": row.retired_at,
                "source": row.source,
            }
            for row in rows
        ]

    # -- internals --------------------------------------------------------------------------

    def _install(self, keys: Sequence[SigningKey], current: SigningKey | None = None) -> None:
        by_kid = {key.kid: key for key in keys}
        if set(by_kid) != set(self._by_kid):
            self.generation += 1
        self._by_kid = by_kid
        self._current = current or keys[-1]

    def _files(self) -> list[StoredKey]:
        """Key files of an earlier release, oldest first (by modification time, then name),
        each dated by its file so that the newest keeps signing."""
        if self.legacy_dir is None or not self.legacy_dir.is_dir():
            return []
        dated = sorted(
            (path.stat().st_mtime_ns, path.name, path) for path in self.legacy_dir.glob("*.pem")
        )
        found = []
        for mtime_ns, name, path in dated:
            key = load_key(path)
            row = self._row(key, f"imported:{name}", mtime_ns / 1e9)
            found.append(row)
        return found

    def _first(self) -> StoredKey:
        return self._row(generate("ES256"), "generated", None)

    def _row(self, key: SigningKey, source: str, signs_from: float | None) -> StoredKey:
        now = self.clock.now()
        return StoredKey(
            purpose=self.purpose,
            kid=key.kid,
            algorithm=key.algorithm,
            public_pem=key.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii"),
            private_pem=self._pem(key.signer()),
            encrypted=self.passphrase is not None,
            signs_from=now if signs_from is None else signs_from,
            created_at=now if signs_from is None else signs_from,  # a file: when it was made
            retired_at=None,
            source=source,
        )

    def _pem(self, private_key: PrivateKey) -> str:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self.passphrase)
            if self.passphrase is not None
            else serialization.NoEncryption()
        )
        return private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode("ascii")

    def _seal(self, row: StoredKey) -> str:
        """An unencrypted stored key's PEM, encrypted with the passphrase."""
        return self._pem(self._private(row).signer())

    def _private(self, row: StoredKey) -> SigningKey:
        where = f"{self.purpose} key {row.kid}"
        password = self.passphrase if row.encrypted else None
        if row.encrypted and password is None:
            raise KeyFileError(f"{where} is encrypted and signing_key_passphrase is not set")
        try:
            private_key = serialization.load_pem_private_key(
                row.private_pem.encode("ascii"), password=password
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise KeyFileError(f"{where}: cannot be read ({error})") from None
        key = key_of(private_key, where)
        if key.kid != row.kid:
            raise KeyFileError(f"{where}: the private key does not match its kid")
        return SigningKey(key.kid, key.algorithm, key.public_key, key.private_key, row.source)

    def _recorder(self, origin: Origin) -> Callable[[KeyChange], Trailer] | None:
        if self.audit is None:
            return None
        audit = self.audit

        def events(change: KeyChange) -> list[AuditEvent]:
            found = [
                audit.event(
                    origin,
                    AuditAction.SIGNING_KEY_ADDED,
                    detail={
                        "purpose": key.purpose,
                        "kid": key.kid,
                        "algorithm": key.algorithm,
                        "source": key.source,
                        "signs": key.signs_from is not None,
                        "encrypted": key.encrypted,
                    },
                )
                for key in change.added
            ]
            found += [
                audit.event(
                    origin,
                    AuditAction.SIGNING_KEY_RETIRED,
                    detail={"purpose": key.purpose, "kid": key.kid},
                )
                for key in change.retired
            ]
            return found

        return audit.recorder(events)


def _public(row: StoredKey) -> SigningKey:
    where = f"{row.purpose} key {row.kid}"
    try:
        public_key = serialization.load_pem_public_key(row.public_pem.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"{where}: its public key cannot be read ({error})") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise KeyFileError(f"{where}: {type(public_key).__name__} is neither EC nor RSA")
    algorithm: Algorithm = "ES256" if isinstance(public_key, ec.EllipticCurvePublicKey) else "RS256"
    return SigningKey(row.kid, algorithm, public_key, None, row.source)


def _jwk_members(public_key: PublicKey) -> dict[str, str]:
    """The members RFC 7638 hashes (and a JWK must have) for an EC P-256 or RSA public key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        numbers = public_key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
    rsa_numbers = public_key.public_numbers()
    return {
        "e": _b64url(_unsigned(rsa_numbers.e)),
        "kty": "RSA",
        "n": _b64url(_unsigned(rsa_numbers.n)),
    }


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
