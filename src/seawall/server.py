"""The server process: Granian and the workers it forks. `seawall serve` prepares the database
and the settings, claims the address (`claim_address`), then becomes this process by exec, so
that neither it nor the workers it forks carry the command-line libraries (each worker's memory
starts as a copy of this process's)."""

from __future__ import annotations

import errno
import resource
import socket
from typing import Any

from seawall.config import Settings, settings_for_worker

# File descriptors a worker keeps for itself beyond its connections (database, blobs, logs).
_RESERVED_FDS = 256


class AddressUnavailable(Exception):
    """The address cannot be listened on; the message says why in one line."""


def claim_address(host: str, port: int) -> socket.socket:
    """Bind `host:port` exclusively, then let this server's own workers share it.

    Granian's workers each bind the port with SO_REUSEPORT, and the kernel then splits
    connections between every socket bound that way by the same user: a second `seawall serve`
    on the same port would start "successfully" and take half the requests. This socket is bound
    first *without* SO_REUSEPORT, so it fails if anything already holds the address; it then
    turns SO_REUSEPORT on, so that this server's workers may join it, while any later server
    (which binds its own claim without the option) is refused. It never listens, so it never
    takes a connection. Keep it open for the life of the server."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AddressUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # SO_REUSEADDR still refuses a listening socket; it only ignores old TIME_WAIT ones.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError as exc:
        sock.close()
        raise AddressUnavailable(_why(host, port, exc)) from None
    return sock


def _why(host: str, port: int, exc: OSError) -> str:
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where}: the address is already in use (another Seawall or another program"
            " listens there); stop it or choose another --port"
        )
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this machine"
    return f"{where}: {exc.strerror or exc}"


def connection_budget(settings: Settings) -> int:
    """Connections one worker may hold: the setting, within the open-file limit (raised to its
    hard maximum first: every connection is a file descriptor)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(16, min(settings.max_connections, soft - _RESERVED_FDS))


def main() -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    settings = settings_for_worker()
    options: dict[str, Any] = {}
    if settings.tls_cert and settings.tls_key:
        options.update(ssl_cert=settings.tls_cert, ssl_key=settings.tls_key)
    Granian(
        "seawall.app:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.effective_workers,
        loop=Loops.uvloop,
        backlog=settings.listen_backlog,
        backpressure=connection_budget(settings),
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout_seconds * 1000)
        ),
        # Without it Granian waits forever for a worker that a SIGTERM caught still starting.
        workers_kill_timeout=settings.shutdown_timeout_seconds,
        log_access=settings.access_log,
        log_level=LogLevels(settings.log_level),
        **options,
    ).serve()


if __name__ == "__main__":
    main()
