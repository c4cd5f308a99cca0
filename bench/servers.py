"""Start and stop the servers under test: Seawall, CNCF Distribution and nginx.

Every server runs in its own process group on a free loopback port, with its files in the
run's work directory; every one is stopped (SIGTERM to the group, SIGKILL after 20 s) on the
way out, error or not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from bench.procs import TreeMonitor, cpu_seconds, free_port


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    """The account the harness signs in with (Seawall's first site admin)."""

    user: str
    password: str

    def basic(self) -> str:
        raw = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass
class Server:
    name: str  # target name, e.g. "seawall-sqlite"
    url: str  # http://127.0.0.1:PORT
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    monitor: TreeMonitor
    # CPU seconds spent on the server's behalf outside its process tree (PostgreSQL backends)
    external_cpu: Callable[[], float] | None = field(default=None)
    # Seawall: every /v2 request needs credentials (pulls from a public namespace aside)
    credentials: Credentials | None = field(default=None)
    # Seawall: its command line, with the server's environment
    cli: SeawallCli | None = field(default=None)
    # Seawall: its database (SQLAlchemy URL), for the audit phases that read it directly
    database_url: str = ""

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, then SIGKILL to whatever of it is left after 20 s (the
    leader) or 5 s more (its workers): nothing the harness started outlives it."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group's id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while proc.poll() is not None and _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise BenchError(f"{proc.args!r} exited with {proc.returncode}:\n{tail}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=1) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{url} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def _run(
    name: str, argv: list[str], port: int, ready_path: str, log: Path, env: dict[str, str] | None
) -> Iterator[Server]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    monitor = TreeMonitor(proc.pid)
    try:
        _wait_ready(f"http://127.0.0.1:{port}{ready_path}", proc, log)
        monitor.start()
        yield Server(name, f"http://127.0.0.1:{port}", port, proc, log, monitor)
    finally:
        monitor.stop()
        stop(proc)


@contextlib.contextmanager
def run_process(
    name: str,
    argv: Callable[[int], list[str]],
    ready_path: str,
    log: Path,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Another server (moto's S3 endpoint): ``argv(port)`` on a free loopback port, ready when
    ``ready_path`` answers 200, with ``extra_env`` added to the harness's environment."""
    port = free_port()
    env = None if extra_env is None else {**os.environ, **extra_env}
    with _run(name, argv(port), port, ready_path, log, env) as server:
        yield server


async def _pg_execute(admin_dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_backend_pids(admin_dsn: str, database: str) -> list[int]:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
        return [int(r["pid"]) for r in rows]
    finally:
        await conn.close()


def postgres_backend_cpu(admin_dsn: str, url: str) -> float:
    """CPU seconds of the PostgreSQL backends now connected to the database in ``url``
    (approximate: backends that came and went are missed)."""
    database = url.rsplit("/", 1)[1]
    return cpu_seconds(asyncio.run(_pg_backend_pids(admin_dsn, database)))


@contextlib.contextmanager
def postgres_database(admin_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = "seawall_bench_" + secrets.token_hex(6)
    asyncio.run(_pg_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_pg_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


SEAWALL_ADMIN = "admin"  # the site admin `seawall serve` creates on an empty database


@dataclass(frozen=True)
class SeawallCli:
    """`seawall ARGS...` run with the environment the server got (its database and data dir)."""

    exe: Path
    env: dict[str, str]

    def __call__(self, args: list[str], stdin: str = "") -> str:
        out = subprocess.run(
            [str(self.exe), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode != 0:
            detail = (out.stderr or out.stdout).strip()[-500:]
            raise BenchError(f"seawall {' '.join(args)}: exit {out.returncode}: {detail}")
        return out.stdout


@contextlib.contextmanager
def seawall(
    work: Path,
    name: str,
    database: str,
    workers: int,
    exe: Path,
    pg_admin_dsn: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`seawall serve` on a fresh database, its site admin created with a random password
    (SEAWALL_ADMIN_PASSWORD) that the server's ``credentials`` carry; ``extra_env`` sets
    more of its settings (``SEAWALL_AUDIT_PULL_EVENTS``: "false")."""
    data_dir = work / name
    data_dir.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}
    env.update(extra_env or {})
    credentials = Credentials(SEAWALL_ADMIN, secrets.token_urlsafe(24))
    env["SEAWALL_ADMIN_PASSWORD"] = credentials.password
    env["SEAWALL_DATA_DIR"] = str(data_dir)  # the same for `serve` and the CLI (`cli`)
    with contextlib.ExitStack() as stack:
        if database == "sqlite":
            env["SEAWALL_DATABASE_URL"] = f"sqlite:///{data_dir / 'seawall.db'}"
        elif database == "postgres":
            env["SEAWALL_DATABASE_URL"] = stack.enter_context(postgres_database(pg_admin_dsn))
        else:
            raise ValueError(database)
        argv = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--data-dir", str(data_dir), "--workers", str(workers)]
        log = work / f"{name}.log"
        server = stack.enter_context(_run(name, argv, port, "/readyz", log, env))
        server.credentials = credentials
        server.cli = SeawallCli(exe, env)
        server.database_url = env["SEAWALL_DATABASE_URL"]
        if database == "postgres":
            url = env["SEAWALL_DATABASE_URL"]
            server.external_cpu = lambda: postgres_backend_cpu(pg_admin_dsn, url)
        yield server


def distribution_config(port: int, storage: dict[str, Any]) -> str:
    """Distribution's YAML config: ``storage`` (its driver's section, `redirect`...) with
    deletes enabled, loopback, log level error and the access log off."""
    config = {
        "version": "0.1",
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {**storage, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    return str(yaml.safe_dump(config, sort_keys=False))


@contextlib.contextmanager
def distribution(
    work: Path,
    exe: str = "docker-registry",
    name: str = "distribution",
    storage: dict[str, Any] | None = None,
) -> Iterator[Server]:
    """CNCF Distribution at its defaults (in-memory blob descriptor cache included), with only:
    filesystem storage in the work dir (or ``storage``: the S3 part's `s3` section), deletes
    enabled, loopback, log level error and the access log off (nginx and Seawall log no access
    lines either). No AWS_* variable of the harness's environment reaches it: the AWS SDK for Go
    v1 it is built with refuses to start on an AWS_CA_BUNDLE (its S3 client's transport is not
    the SDK's own), and the S3 driver's credentials are in its config."""
    if storage is None:
        root = work / name
        root.mkdir()
        storage = {"filesystem": {"rootdirectory": str(root)}}
    port = free_port()
    config = work / f"{name}.yml"
    config.write_text(distribution_config(port, storage))
    argv = [exe, "serve", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with _run(name, argv, port, "/v2/", work / f"{name}.log", env) as server:
        yield server


NGINX_CONFIG = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location = /ready {{ return 200; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(work: Path, root: Path, workers: int = 2, exe: str = "nginx") -> Iterator[Server]:
    """Our own nginx instance (never the system one) serving ``root`` with sendfile."""
    prefix = work / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONFIG.format(workers=workers, prefix=prefix, port=port, root=root))
    argv = [exe, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"]
    with _run("nginx", argv, port, "/ready", work / "nginx.log", None) as server:
        yield server
