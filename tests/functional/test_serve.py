"""`seawall serve` as a process: configuration sources, the loopback rule, TLS, SIGTERM. Commands
that refuse before anything starts run in this process."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.cli import seawall
from tests.support.registry import image_manifest, put_manifest
from tests.support.server import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DATABASES,
    free_port,
    postgres_database,
    stop,
    wait_ready,
)

SEAWALL = str(Path(sys.executable).with_name("seawall"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}
    env.update(extra)
    return env


@contextlib.contextmanager
def serving(
    *args: str, env: dict[str, str], cwd: Path | None = None, wait_for: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`seawall serve ARGS` until the block ends; then it must stop cleanly on SIGTERM.

    SIGTERM is sent once every worker has started: Granian (2.8) loses a SIGTERM that reaches a
    worker still running the application's start-up, and then waits for that worker forever."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [SEAWALL, "serve", *args],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if wait_for:
                wait_ready(wait_for, proc)
            yield proc
        finally:
            try:
                if proc.poll() is None:
                    _wait_for_every_worker(log)
            finally:
                status = stop(proc)
                log.seek(0)
                assert status == 0, log.read().decode(errors="replace")[-4000:]


def _wait_for_every_worker(log: IO[bytes], timeout: float = 30) -> None:
    """Until every worker has finished the app's start-up (its "worker ready" line) and Granian
    has seen it start ("Started worker-N"): a SIGTERM before either can be lost (a CI run
    caught each: exit 1, and a main process waiting forever for the worker it had not seen)."""
    deadline = time.monotonic() + timeout
    while True:
        log.seek(0)
        text = log.read().decode(errors="replace")
        workers = re.search(r" with (\d+) workers ", text)
        wanted = int(workers.group(1)) if workers else 0
        if workers and min(text.count("worker ready"), text.count("Started worker-")) >= wanted:
            return
        assert time.monotonic() < deadline, f"not every worker started:\n{text}"
        time.sleep(0.05)


def test_listens_anywhere_and_is_closed_by_default(tmp_path: Path) -> None:
    """Access control exists, so any address may be used; without credentials nothing is open."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ("--host", "0.0.0.0", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    with serving(*args, env=clean_env(), wait_for=url):
        for path in ("/v2/", "/v2/_catalog", "/v2/any/thing/tags/list"):
            r = httpx.get(url + path)
            assert r.status_code == 401, path
            assert r.headers["WWW-Authenticate"].startswith(f'Bearer realm="{url}/token"')
        r = httpx.post(url + "/v2/team/app/blobs/uploads/", params={"digest": "sha256:" + "0" * 64})
        assert r.status_code == 401
        assert 'scope="repository:team/app:pull,push"' in r.headers["WWW-Authenticate"]


def test_bad_configuration_is_reported(tmp_path: Path) -> None:
    # Refused before anything starts: the command runs in this process.
    result = seawall("serve", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "missing.toml" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 70000\n")
    result = seawall("serve", "--config", str(bad))
    assert result.exit_code == 2
    assert "port" in result.stderr


def test_toml_file_env_and_flags_combine_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    """TOML sets the port and data dir, the environment overrides the data dir, a flag sets
    the workers; the process then exits 0 on SIGTERM."""
    port = free_port()
    data_from_env = tmp_path / "from-env"
    config = tmp_path / "seawall.toml"
    config.write_text(f'port = {port}\ndata_dir = "{tmp_path / "from-toml"}"\nworkers = 3\n')
    proc = subprocess.Popen(
        [SEAWALL, "serve", "--workers", "1"],
        env=clean_env(SEAWALL_CONFIG=str(config), SEAWALL_DATA_DIR=str(data_from_env)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        assert (data_from_env / "seawall.db").exists()
        assert not (tmp_path / "from-toml").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert b"worker-1" in output
    assert b"worker-2" not in output  # the flag's single worker, not the file's three


def test_embedded_default_in_current_directory(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving("--port", str(port), env=clean_env(), cwd=tmp_path, wait_for=url):
        assert (tmp_path / "seawall-data" / "seawall.db").is_file()
        assert (tmp_path / "seawall-data" / "blobs").is_dir()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    context = ssl.create_default_context(cafile=str(cert))
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with serving("--port", str(port), "--data-dir", str(tmp_path / "d"), *tls, env=clean_env()):
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"https://127.0.0.1:{port}/v2/", verify=context, timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # Anonymous: challenged, with a realm on the same https origin.
        assert r.status_code == 401
        assert f'realm="https://127.0.0.1:{port}/token"' in r.headers["WWW-Authenticate"]
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_db_upgrade_command(tmp_path: Path) -> None:
    env = {"SEAWALL_DATA_DIR": str(tmp_path)}
    result = seawall("db", "upgrade", env=env)
    assert result.exit_code == 1  # no database here, and none made unasked
    assert not (tmp_path / "seawall.db").exists()
    result = seawall("db", "upgrade", "--create", env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "seawall.db").is_file()
    result = seawall("db", "current", env=env)
    assert result.exit_code == 0
    assert "(head)" in result.stdout + result.stderr


@pytest.mark.parametrize("database", DATABASES)
def test_restart_keeps_everything(tmp_path: Path, database: str) -> None:
    """Stop and start on the same data: migrations are not re-run, pushed content is served."""
    with contextlib.ExitStack() as stack:
        if database == "postgres":
            url = stack.enter_context(postgres_database())
        else:
            url = f"sqlite:///{tmp_path / 'data' / 'seawall.db'}"
        env = clean_env(
            SEAWALL_DATABASE_URL=url,
            SEAWALL_DATA_DIR=str(tmp_path / "data"),
            SEAWALL_ADMIN_PASSWORD=ADMIN_PASSWORD,
            # Not about scanning. A SIGTERM to the process group while the push's scan was
            # starting its child process once left the server stopping for over 20 s (CI,
            # 2026-12-07; cause not found): that is followed up apart, not in this test.
            SEAWALL_SCAN_IN_PROCESS="false",
        )
        repo = "restart/app"
        body = b""
        for round_ in range(2):
            url = f"http://127.0.0.1:{free_port()}"
            with (
                serving("--port", url.rsplit(":", 1)[1], env=env, wait_for=url),
                httpx.Client(base_url=url, auth=(ADMIN_USER, ADMIN_PASSWORD)) as client,
            ):
                if round_ == 0:
                    body = image_manifest(client, repo)
                    assert put_manifest(client, repo, "v1", body).status_code == 201
                else:
                    assert client.get(f"/v2/{repo}/manifests/v1").content == body


def test_workers_default_to_one_per_cpu(tmp_path: Path) -> None:
    """Without `workers`, Granian starts one worker process per usable CPU (up to the cap), not
    one: a newcomer's registry uses the machine."""
    from seawall.config import DEFAULT_WORKERS_CAP, usable_cpus

    expected = min(usable_cpus(), DEFAULT_WORKERS_CAP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(SEAWALL_ADMIN_PASSWORD=ADMIN_PASSWORD)
    args = ("--port", str(port), "--data-dir", str(tmp_path / "d"))
    with serving(*args, env=env, wait_for=url) as proc:
        # `seawall serve` execs into Granian's main process, whose children are the workers.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        deadline = time.monotonic() + 30
        while len(children.read_text().split()) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(children.read_text().split()) == expected


def test_sigterm_while_workers_start_never_hangs(tmp_path: Path) -> None:
    """Granian loses a SIGTERM that reaches a worker still in the application's start-up and
    would wait for it forever; `shutdown_timeout_seconds` bounds that wait. Signalled as soon as
    the first worker answers (the race it lost in 3 of 8 tries), every round must end."""
    env = clean_env(SEAWALL_ADMIN_PASSWORD=ADMIN_PASSWORD, SEAWALL_SHUTDOWN_TIMEOUT_SECONDS="2")
    data = tmp_path / "d"
    for _ in range(6):
        port = free_port()
        args = ["--port", str(port), "--data-dir", str(data), "--workers", "2"]
        proc = subprocess.Popen(
            [SEAWALL, "serve", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc)
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail("seawall serve did not stop within 20 s of SIGTERM")
