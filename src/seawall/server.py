"""The server process: Granian and the workers it forks. `seawall serve` prepares the database
and the settings, then becomes this process by exec, so that neither it nor the workers it forks
carry the command-line libraries (each worker's memory starts as a copy of this process's)."""

from __future__ import annotations

from typing import Any

from seawall.config import settings_for_worker


def main() -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
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
        workers=settings.workers,
        loop=Loops.uvloop,
        log_access=settings.access_log,
        log_level=LogLevels(settings.log_level),
        **options,
    ).serve()


if __name__ == "__main__":
    main()
