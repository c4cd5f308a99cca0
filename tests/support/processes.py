"""Processes the e2e client matrix runs: client commands with a clean environment, and daemons
started with their state under a temp dir, polled until they answer, stopped by PID, and
cleaned up (anything still mounted under the temp dir unmounted, the dir removed)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

COMMAND_TIMEOUT = 120.0  # seconds, any single client command
DAEMON_START_TIMEOUT = 60.0
DAEMON_STOP_TIMEOUT = 30.0
LOG_LINES = 80  # how much of a daemon's log goes into a failure message

# Environment variables that would point a client at another engine, config or credentials.
_CLIENT_ENV = (
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "CONTAINER_HOST",
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_REGISTRIES_CONF",
    "REGISTRY_AUTH_FILE",
    "CONTAINERD_ADDRESS",
    "CONTAINERD_NAMESPACE",
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV}
    # Traffic goes to 127.0.0.1 only, never through a proxy.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def auth_file(path: Path, credentials: Mapping[str, tuple[str, str]]) -> Path:
    """Write a containers-auth.json (what skopeo and podman read, and docker's config.json
    format): {"auths": {HOST: {"auth": base64("user:password")}}} for each HOST, readable by
    the owner only. Credentials go in a file rather than on a command line."""
    auths = {
        host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for host, (user, password) in credentials.items()
    }
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps({"auths": auths}, indent=2))
    return path


def empty_auth_file(path: Path) -> Path:
    """No credentials: the client is anonymous (podman and skopeo need the file to exist)."""
    return auth_file(path, {})


class ClientError(AssertionError):
    """A client command failed; the message has its command line, output and daemon log."""


class DaemonError(RuntimeError):
    """A daemon did not start (or reload); the message has its log."""


def log_tail(path: Path | None, lines: int = LOG_LINES) -> str:
    if path is None:
        return "(no log)"
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def text_of(out: str | bytes | None) -> str:
    if isinstance(out, bytes):
        return out.decode(errors="replace")
    return out or ""


# Options whose value holds a password (ctr --user, skopeo --creds): not shown in messages.
_SECRET_OPTIONS = frozenset({"--user", "-u", "--creds", "--src-creds", "--dest-creds"})


def shown(argv: list[str]) -> str:
    """The command line for a message, with any password in it masked."""
    out = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg in _SECRET_OPTIONS and ":" in argv[i + 1]:
            out[i + 1] = argv[i + 1].split(":", 1)[0] + ":***"
    return shlex.join(out)


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT,
    context: Callable[[], str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client command; on failure or timeout raise ClientError with everything useful.

    `stdin` is written to the command's standard input (a password for `--password-stdin`);
    without it the command reads nothing.
    """
    __tracebackhide__ = True  # the message says it all; keep the environment out of reports
    try:
        proc = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
        )
    except subprocess.TimeoutExpired as e:
        msg = f"`{shown(argv)}` timed out after {timeout}s"
        msg += f"\n--- stdout\n{text_of(e.stdout)}\n--- stderr\n{text_of(e.stderr)}"
        if context:
            msg += "\n" + context()
        raise ClientError(msg) from None
    if check and proc.returncode != 0:
        msg = f"`{shown(argv)}` exited with {proc.returncode}"
        msg += f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        if context:
            msg += "\n" + context()
        raise ClientError(msg)
    return proc


# --- daemons and temp dirs ------------------------------------------------------------------


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return f"--- {self.name} log ({self.log_path}), last lines\n{log_tail(self.log_path)}"


def start_daemon(name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> Daemon:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Daemon(name, proc, log_path)


def wait_daemon(daemon: Daemon, probe: Callable[[], bool], timeout: float) -> None:
    """Poll `probe` until it is true; fail with the daemon's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if daemon.proc.poll() is not None:
            raise DaemonError(
                f"{daemon.name} exited with {daemon.proc.returncode} while starting\n{daemon.log()}"
            )
        if probe():
            return
        if time.monotonic() > deadline:
            raise DaemonError(f"{daemon.name} was not ready after {timeout:.0f}s\n{daemon.log()}")
        time.sleep(0.1)


def stop_daemon(daemon: Daemon, timeout: float = DAEMON_STOP_TIMEOUT) -> None:
    """SIGTERM the PID we started, SIGKILL it if it does not exit in time."""
    if daemon.proc.poll() is None:
        daemon.proc.send_signal(signal.SIGTERM)
        try:
            daemon.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            daemon.proc.kill()
            daemon.proc.wait()


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first."""
    top = str(root.resolve())
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape_mountinfo(line.split()[4])
        if point == top or point.startswith(top + "/"):
            found.add(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(root: Path) -> None:
    """Unmount whatever a daemon left mounted under `root`, then delete it."""
    for point in mounts_under(root):
        if subprocess.run(["umount", "-R", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
