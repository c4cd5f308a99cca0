"""What `seawall serve` does before it serves: bring the schema up to date, record the
configuration it starts with in the audit log (`config:loaded`, secrets masked), and make sure a
first site admin exists. No default password: the admin's password is `admin_password` when set,
otherwise a random one written once to DATA_DIR/admin-password (mode 0600).

It runs in a child process (`prepare_in_subprocess`), so the server's parent process, whose
workers fork from it, never carries Alembic, SQLAlchemy or argon2 in memory. A failure the
operator can fix (a data directory it cannot create, a database it cannot reach, an
`admin_password` too short) is said in one line, and the child exits with `REPORTED`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from seawall.config import SECRETS, Settings
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from seawall.services.identity import IdentityService

ADMIN = "admin"
PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name
MASK = "**********"  # what pydantic shows for a SecretStr
REPORTED = 3  # the child's exit status when it has said why it failed, in one line


class StartRefused(Exception):
    """Preparing cannot go on, for a reason the operator can fix; the message says which."""


async def start_up(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> str | None:
    """Join the database's nodes (on SQLite, only if no other node is live), record the
    configuration, load the signing keys (importing an earlier release's key files, or making
    the first keys), then make sure the first admin exists (see `ensure_admin`). Raises
    `StartRefused`."""
    from seawall.services.keys import KeyFileError, KeysUnusable
    from seawall.services.nodes import AnotherNode
    from seawall.wiring import Services

    services = Services.build(settings, clock=clock)
    # Only the database: the audit log, not started, writes each event at once.
    await services.backend.start()
    try:
        try:
            await services.nodes.join(alone=not settings.is_postgres)
        except AnotherNode as exc:
            raise StartRefused(str(exc)) from None
        await services.audit.record(
            Origin.system(), AuditAction.CONFIG_LOADED, detail=config_detail(settings)
        )
        try:
            await services.keys.ready()
            await services.receipt_keys.ready()
        except (KeyFileError, KeysUnusable) as exc:
            raise StartRefused(f"signing keys: {exc}") from None
        return await ensure_admin(services.identity, settings)
    finally:
        await services.close()


async def ensure_admin(identity: IdentityService, settings: Settings) -> str | None:
    """Create the first site admin if there are no users; say what was done, or None."""
    from seawall.domain.credentials import new_password
    from seawall.errors import RegistryError

    if await identity.identities.count_users():
        return None
    given = settings.admin_password
    password = given.get_secret_value() if given is not None else new_password()
    try:
        created = await identity.create_user(Origin.system(), ADMIN, password, site_admin=True)
    except RegistryError as exc:  # only a given password can be refused (too short)
        raise StartRefused(
            f"admin_password (SEAWALL_ADMIN_PASSWORD): {exc.message}; the first site admin was"
            " not created"
        ) from None
    if not created:
        return None  # another server created it first
    if given is not None:
        return f"created the site admin {ADMIN!r} with the password from SEAWALL_ADMIN_PASSWORD"
    path = settings.data_dir.resolve() / PASSWORD_FILE
    _write_private(path, password + "\n")
    return (
        f"created the site admin {ADMIN!r}; its password is in {path} (readable by this"
        f" user only); change it with `seawall user passwd {ADMIN}` and delete the file"
    )


def config_detail(settings: Settings) -> dict[str, Any]:
    """The `config:loaded` detail: the Seawall version and every setting, secrets masked.
    Secret settings dump masked; a URL setting may carry a password (database), or a token in
    its path or query (webhooks), so those parts are masked too."""
    from seawall import __version__

    values = settings.model_dump(mode="json")
    values["database_url"] = _mask_url(values["database_url"])
    values["audit_webhook_url"] = _mask_url(values["audit_webhook_url"], keep_path=False)
    return {"version": __version__, "settings": values}


def _mask_url(url: str, keep_path: bool = True) -> str:
    parts = urlsplit(url)
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:{MASK}@{host}")
    if not keep_path and (parts.path.strip("/") or parts.query):
        parts = parts._replace(path="/" + MASK, query="", fragment="")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):  # libpq also takes it as a parameter
        masked = [(k, MASK if k == "password" else v) for k, v in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    # Rebuilt only when something was masked: `sqlite:////path` does not survive a round trip.
    return url if parts == urlsplit(url) else urlunsplit(parts)


def _write_private(path: Path, text: str) -> None:
    """Write a new file readable by its owner only; never overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def prepare(settings: Settings) -> None:
    """Create the data directory, bring the schema up to date (making the database when there
    is none, and saying so), then `start_up`. Raises `StartRefused`."""
    from alembic.util.exc import CommandError

    from seawall.db.migrate import upgrade
    from seawall.db.schema import database_revision, location
    from seawall.db.store import DatabaseUnavailable

    where = location(settings)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartRefused(
            f"cannot create the data directory {settings.data_dir.resolve()}: {exc.strerror}"
        ) from None
    try:
        before = asyncio.run(database_revision(settings))
        upgrade(settings.effective_database_url)
        if before is None:
            print(f"seawall: created a new Seawall database at {where}", file=sys.stderr)
        said = asyncio.run(start_up(settings))
    except DatabaseUnavailable as exc:
        raise StartRefused(
            f"{where}: {exc}; check database_url (--config FILE or SEAWALL_DATABASE_URL)"
        ) from None
    except CommandError as exc:  # e.g. a revision a newer Seawall wrote
        raise StartRefused(f"cannot bring the database at {where} up to date: {exc}") from None
    if said:
        print(f"seawall: {said}", file=sys.stderr)


def prepare_in_subprocess(settings: Settings) -> None:
    """Run `prepare` in a child process. The settings travel through stdin, secrets included:
    a command line is visible to every local user."""
    document = settings.model_dump(mode="json")
    for name in ("admin_password", *SECRETS):
        secret = getattr(settings, name)
        if secret is not None:
            document[name] = secret.get_secret_value()
    subprocess.run(
        [sys.executable, "-m", "seawall.bootstrap"], input=json.dumps(document).encode(), check=True
    )


if __name__ == "__main__":
    try:
        prepare(Settings.model_validate(json.loads(sys.stdin.read())))
    except StartRefused as exc:
        print(f"seawall: {exc}", file=sys.stderr)
        sys.exit(REPORTED)
