"""Where the S3 client's credentials and region come from, in the order the AWS SDKs use.

1. `s3_access_key_id` / `s3_secret_access_key` from the settings;
2. the environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
3. a web identity (EKS service accounts): `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`,
   exchanged with STS `AssumeRoleWithWebIdentity`;
4. the shared files: `~/.aws/credentials`, then `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`,
   `AWS_CONFIG_FILE`), profile `AWS_PROFILE` or `default`; static keys only;
5. a container role (ECS, EKS Pod Identity): `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or
   `..._FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`;
6. the instance role, from the EC2 instance metadata service (IMDSv2, v1 where v2 is refused),
   unless `AWS_EC2_METADATA_DISABLED=true`.

The chain is resolved on first use (in a worker thread: 5 and 6 are HTTP calls) and the source
found is kept; credentials that expire (3, 5, 6) are fetched again five minutes before they do.
The environment is handed in as a mapping: only seawall.config reads the process's environment.
"""

from __future__ import annotations

import configparser
import http.client
import json
import threading
import xml.etree.ElementTree as ET  # STS's answer: refused if it has a DTD
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from seawall.storage.s3api.signing import Credentials
from seawall.storage.s3api.transport import one_request

REFRESH_BEFORE = timedelta(minutes=5)
IMDS = "http://169.254.169.254"
ECS = "http://169.254.170.2"

Fetch = Callable[[], tuple[Credentials, datetime | None]]


class CredentialsError(OSError):
    """No credentials could be found, or a source refused to give them (an `OSError`, like
    the client's `S3Error`: a storage failure to the store's callers)."""


class CredentialSource(Protocol):
    def get(self) -> Credentials: ...


class StaticCredentials:
    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def get(self) -> Credentials:
        return self._credentials


class RefreshingCredentials:
    """Credentials that expire: fetched on first use and again shortly before they expire."""

    def __init__(self, fetch: Fetch, now: Callable[[], datetime]) -> None:
        self._fetch = fetch
        self._now = now
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._expires: datetime | None = None

    def _stale(self) -> bool:
        if self._credentials is None:
            return True
        return self._expires is not None and self._now() >= self._expires - REFRESH_BEFORE

    def get(self) -> Credentials:
        with self._lock:
            if self._stale():
                self._credentials, self._expires = self._fetch()
            assert self._credentials is not None
            return self._credentials


class CredentialChain:
    """The first source of the list that has credentials, found on first use and kept."""

    def __init__(self, sources: list[Callable[[], CredentialSource | None]]) -> None:
        self._sources = sources
        self._lock = threading.Lock()
        self._found: CredentialSource | None = None

    def get(self) -> Credentials:
        with self._lock:
            if self._found is None:
                for source in self._sources:
                    found = source()
                    if found is not None:
                        self._found = found
                        break
                else:
                    raise CredentialsError(
                        "no S3 credentials: set s3_access_key_id and s3_secret_access_key, or"
                        " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use an AWS role"
                    )
        return self._found.get()


def credential_chain(
    access_key_id: str | None,
    secret_access_key: str | None,
    environ: Mapping[str, str],
    home: Path,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CredentialSource:
    if access_key_id or secret_access_key:
        if not (access_key_id and secret_access_key):
            raise CredentialsError("s3_access_key_id and s3_secret_access_key go together")
        return StaticCredentials(Credentials(access_key_id, secret_access_key))

    def refreshing(fetch: Fetch | None) -> CredentialSource | None:
        return None if fetch is None else RefreshingCredentials(fetch, now)

    return CredentialChain(
        [
            lambda: _from_environment(environ),
            lambda: refreshing(_web_identity(environ)),
            lambda: _from_files(environ, home),
            lambda: refreshing(_container(environ)),
            lambda: refreshing(_instance(environ)),
        ]
    )


def region_of(environ: Mapping[str, str], home: Path) -> str | None:
    """The region the environment names: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(name):
            return environ[name]
    config = _profile(_config_path(environ, home), _profile_name(environ), config=True)
    return config.get("region") or None


# -- static sources --------------------------------------------------------------------------


def _from_environment(environ: Mapping[str, str]) -> CredentialSource | None:
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        return None
    token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
    return StaticCredentials(Credentials(key, secret, token))


def _profile_name(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"


def _config_path(environ: Mapping[str, str], home: Path) -> Path:
    return Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config").expanduser()


def _profile(path: Path, name: str, config: bool) -> dict[str, str]:
    """A profile's keys from an AWS shared file (`[name]`; in the config file `[profile name]`
    but for `default`); empty when the file or profile is absent or unreadable."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return {}
    section = f"profile {name}" if config and name != "default" else name
    if not parser.has_section(section):
        return {}
    return {key: value.strip() for key, value in parser.items(section)}


def _from_files(environ: Mapping[str, str], home: Path) -> CredentialSource | None:
    name = _profile_name(environ)
    shared = Path(
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"
    ).expanduser()
    for values in (
        _profile(shared, name, config=False),
        _profile(_config_path(environ, home), name, config=True),
    ):
        key, secret = values.get("aws_access_key_id"), values.get("aws_secret_access_key")
        if key and secret:
            token = values.get("aws_session_token") or None
            return StaticCredentials(Credentials(key, secret, token))
    return None


# -- sources over HTTP -----------------------------------------------------------------------


# These requests go without a proxy (the metadata addresses are link-local), with a timeout of
# a second as the AWS SDKs allow them, and answers of at most 64 KiB (`one_request`).
FAILURES = (OSError, http.client.HTTPException, UnicodeDecodeError)


def _answer(answer: tuple[int, bytes], what: str) -> bytes:
    status, data = answer
    if status != 200:
        raise CredentialsError(f"{what} answered {status}")
    return data


def _expiry(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _from_json(data: bytes, what: str) -> tuple[Credentials, datetime | None]:
    try:
        raw = json.loads(data)
        key, secret, token = raw["AccessKeyId"], raw["SecretAccessKey"], raw.get("Token")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise CredentialsError(f"{what} gave no credentials") from exc
    if not all(isinstance(v, str) and v for v in (key, secret)) or not isinstance(
        token, str | None
    ):
        raise CredentialsError(f"{what} gave no credentials")
    return Credentials(key, secret, token or None), _expiry(raw.get("Expiration"))


def _container(environ: Mapping[str, str]) -> Fetch | None:
    relative = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    url = ECS + relative if relative else environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not url:
        return None
    token_file = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    token = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")

    def fetch() -> tuple[Credentials, datetime | None]:
        headers = {}
        if token_file:
            headers["Authorization"] = Path(token_file).read_text(encoding="utf-8").strip()
        elif token:
            headers["Authorization"] = token
        try:
            data = _answer(one_request(url, headers=headers), "the container credentials")
        except FAILURES as exc:
            raise CredentialsError(f"the container credentials: {exc}") from exc
        return _from_json(data, "the container credentials")

    return fetch


def _instance(environ: Mapping[str, str]) -> Fetch | None:
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None
    base = (environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS).rstrip("/")
    path = "/latest/meta-data/iam/security-credentials/"

    def fetch() -> tuple[Credentials, datetime | None]:
        # The last source: when it fails, say that nothing before it had credentials either.
        what = "no S3 credentials in the settings, the environment or ~/.aws, and the instance"
        what += " metadata service"
        try:
            headers = {}
            status, token = one_request(
                base + "/latest/api/token",
                "PUT",
                {"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
            )
            if status == 200:
                headers["X-aws-ec2-metadata-token"] = token.decode().strip()
            elif status not in (403, 404, 405):  # v1 where v2 is not offered
                raise CredentialsError(f"{what} refused a token ({status})")
            role = _answer(one_request(base + path, headers=headers), what).decode().split()
            if not role:
                raise CredentialsError(f"{what} names no instance role")
            data = _answer(one_request(base + path + role[0], headers=headers), what)
        except FAILURES as exc:
            raise CredentialsError(f"{what}: {exc}") from exc
        return _from_json(data, what)

    # Only a machine with a metadata service gets past the first request; elsewhere the chain
    # ends with "no credentials" after one short connection attempt.
    return fetch


def _web_identity(environ: Mapping[str, str]) -> Fetch | None:
    token_file, role = environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"), environ.get("AWS_ROLE_ARN")
    if not (token_file and role):
        return None
    session = environ.get("AWS_ROLE_SESSION_NAME") or "seawall"
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    endpoint = environ.get("AWS_ENDPOINT_URL_STS") or (
        f"https://sts.{region}.amazonaws.com" if region else "https://sts.amazonaws.com"
    )
    if urlsplit(endpoint).scheme not in ("http", "https"):
        raise CredentialsError(f"AWS_ENDPOINT_URL_STS {endpoint!r} is not an HTTP URL")

    def fetch() -> tuple[Credentials, datetime | None]:
        what = "STS AssumeRoleWithWebIdentity"
        form = {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": role,
            "RoleSessionName": session,
            "WebIdentityToken": Path(token_file).read_text(encoding="utf-8").strip(),
        }
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            data = _answer(one_request(endpoint + "/", "POST", headers, body, timeout=10), what)
        except FAILURES as exc:
            raise CredentialsError(f"{what}: {exc}") from exc
        return _from_sts(data, what)

    return fetch


def _from_sts(data: bytes, what: str) -> tuple[Credentials, datetime | None]:
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise CredentialsError(f"{what} answered with a DTD")
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD (checked above), bounded size
    except ET.ParseError as exc:
        raise CredentialsError(f"{what} answered no XML") from exc
    found = {el.tag.rpartition("}")[2]: (el.text or "") for el in root.iter()}
    try:
        credentials = Credentials(
            found["AccessKeyId"], found["SecretAccessKey"], found.get("SessionToken") or None
        )
    except KeyError as exc:
        raise CredentialsError(f"{what} gave no credentials") from exc
    return credentials, _expiry(found.get("Expiration"))
