"""Where S3 credentials and the region come from: the settings, the AWS variables, the shared
files, and the HTTP sources (container, instance metadata, STS web identity), each served here
by a small server in a thread that checks what the real one would."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall.storage.s3api.credentials import (
    CredentialsError,
    _from_json,
    _from_sts,
    credential_chain,
    region_of,
)
from seawall.storage.s3api.signing import Credentials
from tests.support.fuzz import FUZZ

SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
JSON = st.recursive(
    SCALARS
    | st.fixed_dictionaries(
        {"AccessKeyId": SCALARS, "SecretAccessKey": SCALARS},
        optional={"Token": SCALARS, "Expiration": SCALARS},
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)

NO_IMDS = {"AWS_EC2_METADATA_DISABLED": "true"}
Route = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes]]


@pytest.fixture
def serve() -> Iterator[Callable[[Route], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(route: Route) -> str:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, data = route(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _answer

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_settings_win_and_go_together(tmp_path: Path) -> None:
    environ = {"AWS_ACCESS_KEY_ID": "env", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    assert credential_chain("set", "set-secret", environ, tmp_path).get() == Credentials(
        "set", "set-secret"
    )
    with pytest.raises(CredentialsError, match="go together"):
        credential_chain("set", None, environ, tmp_path)


def test_the_environment(tmp_path: Path) -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "env",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_SESSION_TOKEN": "tok",
    }
    assert credential_chain(None, None, environ, tmp_path).get() == Credentials(
        "env", "env-secret", "tok"
    )


def test_the_shared_files_and_profiles(tmp_path: Path) -> None:
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        "[default]\naws_access_key_id = d\naws_secret_access_key = d-secret\n"
        "[ci]\naws_access_key_id = c\naws_secret_access_key = c-secret\naws_session_token = t\n"
    )
    (aws / "config").write_text(
        "[default]\nregion = eu-north-1\n"
        "[profile other]\nregion = ap-south-1\naws_access_key_id = o\n"
        "aws_secret_access_key = o-secret\n"
    )
    assert credential_chain(None, None, NO_IMDS, tmp_path).get() == Credentials("d", "d-secret")
    ci = {**NO_IMDS, "AWS_PROFILE": "ci"}
    assert credential_chain(None, None, ci, tmp_path).get() == Credentials("c", "c-secret", "t")
    other = {**NO_IMDS, "AWS_PROFILE": "other"}
    assert credential_chain(None, None, other, tmp_path).get() == Credentials("o", "o-secret")
    assert region_of({}, tmp_path) == "eu-north-1"
    assert region_of(other, tmp_path) == "ap-south-1"
    assert region_of({"AWS_REGION": "us-west-2", **other}, tmp_path) == "us-west-2"
    assert region_of({"AWS_DEFAULT_REGION": "sa-east-1"}, tmp_path) == "sa-east-1"


def test_a_broken_file_is_no_source(tmp_path: Path) -> None:
    (tmp_path / "credentials").write_bytes(b"\xff[default\naws_access_key_id")
    environ = {**NO_IMDS, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    with pytest.raises(CredentialsError, match="no S3 credentials"):
        credential_chain(None, None, environ, tmp_path).get()
    assert region_of({"AWS_CONFIG_FILE": str(tmp_path / "credentials")}, tmp_path) is None


def test_container_credentials_are_refreshed_before_they_expire(
    serve: Callable[[Route], str], tmp_path: Path
) -> None:
    issued: list[str] = []
    now = [datetime(2026, 1, 1, tzinfo=UTC)]

    def route(method: str, path: str, headers: dict[str, str], _: bytes) -> tuple[int, bytes]:
        assert (method, path, headers.get("authorization")) == ("GET", "/creds", "secret-token")
        issued.append(f"k{len(issued)}")
        expiry = now[0] + timedelta(minutes=30)
        answer = {
            "AccessKeyId": issued[-1],
            "SecretAccessKey": "s",
            "Token": "t",
            "Expiration": expiry.isoformat().replace("+00:00", "Z"),
        }
        return 200, json.dumps(answer).encode()

    url = serve(route)
    token_file = tmp_path / "token"
    token_file.write_text("secret-token\n")
    environ = {
        **NO_IMDS,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": url + "/creds",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    source = credential_chain(None, None, environ, tmp_path, now=lambda: now[0])
    assert source.get() == Credentials("k0", "s", "t")
    now[0] += timedelta(minutes=20)
    assert source.get().access_key_id == "k0"  # 10 minutes left: still good
    now[0] += timedelta(minutes=6)
    assert source.get().access_key_id == "k1"  # within 5 minutes of expiry: fetched again
    assert issued == ["k0", "k1"]


def test_the_instance_role_over_imdsv2(serve: Callable[[Route], str], tmp_path: Path) -> None:
    def route(method: str, path: str, headers: dict[str, str], _: bytes) -> tuple[int, bytes]:
        if (method, path) == ("PUT", "/latest/api/token"):
            assert headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
            return 200, b"imds-token"
        if headers.get("x-aws-ec2-metadata-token") != "imds-token":
            return 401, b""
        if path == "/latest/meta-data/iam/security-credentials/":
            return 200, b"registry-role\n"
        if path == "/latest/meta-data/iam/security-credentials/registry-role":
            return 200, b'{"AccessKeyId": "i", "SecretAccessKey": "i-s", "Token": "i-t"}'
        return 404, b""

    environ = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": serve(route)}
    assert credential_chain(None, None, environ, tmp_path).get() == Credentials("i", "i-s", "i-t")


def test_an_unreachable_metadata_service_ends_the_chain(tmp_path: Path) -> None:
    environ = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"}  # discard: refused
    with pytest.raises(CredentialsError, match="instance metadata"):
        credential_chain(None, None, environ, tmp_path).get()


def test_a_web_identity_is_exchanged_with_sts(
    serve: Callable[[Route], str], tmp_path: Path
) -> None:
    def route(method: str, path: str, _: dict[str, str], body: bytes) -> tuple[int, bytes]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        assert (method, form["Action"], form["WebIdentityToken"]) == (
            "POST",
            "AssumeRoleWithWebIdentity",
            "jwt",
        )
        assert form["RoleArn"] == "arn:aws:iam::1:role/r"
        return 200, (
            b'<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            b"<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>w</AccessKeyId>"
            b"<SecretAccessKey>w-s</SecretAccessKey><SessionToken>w-t</SessionToken>"
            b"<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>"
            b"</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
        )

    (tmp_path / "jwt").write_text("jwt")
    environ = {
        **NO_IMDS,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "jwt"),
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
        "AWS_ENDPOINT_URL_STS": serve(route),
    }
    assert credential_chain(None, None, environ, tmp_path).get() == Credentials("w", "w-s", "w-t")


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.builds(lambda v: json.dumps(v).encode(), JSON)))
def test_credential_answers_raise_only_credentials_errors(data: bytes) -> None:
    for parse in (_from_json, _from_sts):
        try:
            credentials, _ = parse(data, "a source")
        except CredentialsError:
            continue
        assert credentials.access_key_id and credentials.secret_access_key
