"""What `seawall serve` does before it serves: bring the schema up to date and make sure a first
site admin exists. No default password: the admin's password is `admin_password` when set,
otherwise a random one written once to DATA_DIR/admin-password (mode 0600).

It runs in a child process (`prepare_in_subprocess`), so the server's parent process, whose
workers fork from it, never carries Alembic, SQLAlchemy or argon2 in memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from seawall.config import Settings

ADMIN = "admin"
PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name


async def ensure_admin(settings: Settings) -> str | None:
    """Create the first site admin if there are no users; say what was done, or None."""
    from seawall.db.backends import database_backend
    from seawall.db.identities import IdentityStore
    from seawall.domain.credentials import hash_password, new_password

    backend = database_backend(settings)
    await backend.start()
    try:
        identities = IdentityStore(backend)
        if await identities.count_users():
            return None
        given = settings.admin_password
        password = given.get_secret_value() if given is not None else new_password()
        if not await identities.create_user(ADMIN, hash_password(password), site_admin=True):
            return None  # another server created it first
        if given is not None:
            return f"created the site admin {ADMIN!r} with the password from SEAWALL_ADMIN_PASSWORD"
        path = settings.data_dir.resolve() / PASSWORD_FILE
        _write_private(path, password + "\n")
        return (
            f"created the site admin {ADMIN!r}; its password is in {path} (readable by this"
            f" user only); change it with `seawall user passwd {ADMIN}` and delete the file"
        )
    finally:
        await backend.close()


def _write_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only; never overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def prepare(settings: Settings) -> None:
    from seawall.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    said = asyncio.run(ensure_admin(settings))
    if said:
        print(f"seawall: {said}", file=sys.stderr)


def prepare_in_subprocess(settings: Settings) -> None:
    """Run `prepare` in a child process. The settings travel through stdin, secrets included:
    a command line is visible to every local user."""
    document = settings.model_dump(mode="json")
    if settings.admin_password is not None:
        document["admin_password"] = settings.admin_password.get_secret_value()
    subprocess.run(
        [sys.executable, "-m", "seawall.bootstrap"], input=json.dumps(document).encode(), check=True
    )


if __name__ == "__main__":
    prepare(Settings.model_validate(json.loads(sys.stdin.read())))
