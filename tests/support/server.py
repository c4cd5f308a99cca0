"""Start a real `seawall serve` process, for the tests where the process is the point: real
registry clients (e2e), sockets and Granian's limits, signals, several workers. Other functional
tests run the app in this process (tests/support/app.py) and share `RunningServer`'s view of it.

Every database a suite runs against is a fresh one: a new SQLite file in a temp dir, or a new
PostgreSQL database on the local server, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
# The pool of each server worker process the suite starts (real `seawall serve`s and apps in
# this process), unless a test sets its own. The run shares one PostgreSQL (100 connections by
# default) between its two xdist workers; with the default pool of 10, the e2e suite's nodes
# (two nodes of two workers, a `seawall worker`, the session's registry) and the functional
# suite's apps held all 100 once (CI, 2026-12-07: "too many clients"). Requests beyond the
# pool wait for a connection, as on a node whose pool is full.
TEST_PG_POOL_SIZE = 4
DATABASES = ("sqlite", "postgres")
# The site admin every test server starts with (SEAWALL_ADMIN_PASSWORD): tests log in as it.
ADMIN_USER = "admin"
SEAWALL = str(Path(sys.executable).with_name("seawall"))  # the venv's console script
ADMIN_PASSWORD = "admin-password-for-tests-" + secrets.token_hex(8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    host: str  # "127.0.0.1:PORT", what registry clients are given
    url: str  # "http://127.0.0.1:PORT"
    data_dir: Path
    database: str
    process: subprocess.Popen[bytes] | None
    log_path: Path | None
    username: str = ADMIN_USER
    password: str = ADMIN_PASSWORD
    database_url: str = ""
    _http: httpx.Client | None = field(default=None, repr=False)

    @property
    def creds(self) -> str:
        """`user:password`, as skopeo's --creds and ctr's --user take it."""
        return f"{self.username}:{self.password}"

    @property
    def auth(self) -> tuple[str, str]:
        """(user, password), as httpx's `auth=` takes it (Basic)."""
        return (self.username, self.password)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def client(self, base_url: str | None = None, **kwargs: Any) -> httpx.Client:
        """An `httpx.Client` for this server; `kwargs` as `httpx.Client` takes them. Tests
        write `server.client(auth=...)` and run unchanged against a real or an in-process
        server (tests/support/app.py)."""
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=base_url or self.url, **kwargs)

    @property
    def http(self) -> httpx.Client:
        """A client without credentials, for one-off requests (`server.http.get(url, auth=)`);
        closed when the server stops."""
        if self._http is None:
            self._http = self.client()
        return self._http

    def close_clients(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database; yields its SQLAlchemy URL."""
    name = "seawall_t_" + secrets.token_hex(6)
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"seawall serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("seawall serve did not become ready")


@contextmanager
def seawall_server(
    tmp: Path,
    database: str = "sqlite",
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    scanning: bool = False,
    prepare: Callable[[str, Path], None] | None = None,
    shared: RunningServer | None = None,
    own_data_dir: bool = False,
) -> Iterator[RunningServer]:
    """Run `seawall serve` on a free loopback port with a fresh data dir and database.

    Unless `scanning`, the in-process scan worker is off: pushes still queue scan jobs, but
    suites that are not about scanning see no SBOM referrers or scan events appear.
    `prepare(database_url, data_dir)` runs before the server starts (e.g. to restore data an
    earlier release wrote). With `shared`, this server is another node of that one: same
    database and data directory (give it another SEAWALL_NODE_NAME in `extra_env`), or only
    the database with `own_data_dir` (nodes on several hosts, blobs in S3)."""
    external = os.environ.get("SEAWALL_E2E_REGISTRY")
    if external:  # development aid: point the suites at another registry, e.g. Distribution
        yield RunningServer(external, f"http://{external}", tmp, "external", None, None)
        return
    data_dir = shared.data_dir if shared is not None and not own_data_dir else tmp / "data"
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}
    env["SEAWALL_PG_POOL_SIZE"] = str(TEST_PG_POOL_SIZE)
    if not scanning:
        env["SEAWALL_SCAN_IN_PROCESS"] = "false"
    env.update(extra_env or {})
    databases = (
        contextlib.nullcontext(shared.database_url)
        if shared is not None
        else database_url(database, data_dir)
    )
    with databases as db_url:
        env["SEAWALL_DATABASE_URL"] = db_url
        if prepare is not None:
            prepare(db_url, data_dir)
        env.setdefault("SEAWALL_ADMIN_PASSWORD", ADMIN_PASSWORD)
        log_path = tmp / "server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    SEAWALL,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(data_dir),
                    "--workers",
                    str(workers),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = RunningServer(
            f"127.0.0.1:{port}",
            f"http://127.0.0.1:{port}",
            data_dir,
            database,
            proc,
            log_path,
            database_url=db_url,
        )
        try:
            wait_ready(server.url, proc)
            yield server
        finally:
            server.close_clients()
            stop(proc)


def cli_env(server: RunningServer, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a `seawall` command (a CLI command, `seawall worker`) working on a
    running server's database and data directory, with no other SEAWALL_* setting leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}
    env["SEAWALL_PG_POOL_SIZE"] = str(TEST_PG_POOL_SIZE)
    env.update(extra or {})
    env["SEAWALL_DATABASE_URL"] = server.database_url or ""
    env["SEAWALL_DATA_DIR"] = str(server.data_dir)
    env.update(storage_env(server))
    return env


def storage_env(server: RunningServer) -> dict[str, str]:
    """The SEAWALL_* variables that point a command at the blob storage of a server in this
    process (tests/support/app.py) when it is not the data directory: its bucket on S3, as an
    operator would set them beside the database. None for a server process of its own, whose
    storage the test set itself."""
    settings = getattr(server, "settings", None)
    if settings is None or not settings.storage_url:
        return {}
    env = {"SEAWALL_STORAGE_URL": str(settings.storage_url)}
    if settings.uses_s3:
        env["SEAWALL_S3_ENDPOINT_URL"] = str(settings.s3_endpoint_url)
        env["SEAWALL_S3_REGION"] = str(settings.s3_region)
        env["SEAWALL_S3_ADDRESSING_STYLE"] = str(settings.s3_addressing_style)
        env["SEAWALL_S3_PART_MIB"] = str(settings.s3_part_mib)
        for name in ("s3_access_key_id", "s3_secret_access_key"):
            secret = getattr(settings, name)
            if secret is not None:
                env[f"SEAWALL_{name.upper()}"] = secret.get_secret_value()
    return env


@contextmanager
def database_url(database: str, data_dir: Path) -> Iterator[str]:
    """A new database of kind `database`: a SQLite file in `data_dir`, or a PostgreSQL database
    dropped afterwards; yields its URL."""
    if database == "sqlite":
        yield f"sqlite:///{data_dir / 'seawall.db'}"
    elif database == "postgres":
        with postgres_database() as url:
            yield url
    else:
        raise ValueError(database)


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


@contextmanager
def seawall_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `seawall worker` process with `env`, its output in `log`, until the block ends; then
    it must stop cleanly on SIGTERM."""
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [SEAWALL, "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield worker
    finally:
        assert stop(worker) == 0, log.read_text()


def require_tool(name: str) -> str:
    """Path of a tool a test needs; under CI a missing tool fails the test instead of skipping."""
    import pytest

    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required (make test installs it) but is not on PATH")
    pytest.skip(f"{name} not installed")
    raise AssertionError  # unreachable
