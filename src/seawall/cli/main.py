"""`seawall`: the entry point. Every command loads settings the same way (`load`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from seawall.cli import (
    access,
    audit,
    db,
    exception,
    fsck,
    gc,
    inventory,
    key,
    namespace,
    policy,
    promote,
    repo,
    retention,
    robot,
    scan,
    serve,
    signature,
    signing_key,
    tag,
    team,
    trash,
    user,
    vulndb,
)
from seawall.cli.store import fail
from seawall.config import Settings, config_file, load_settings

HELP = """Seawall: a self-hosted OCI container registry, secure and governed by default.

Every command reads the same configuration: flags, then SEAWALL_* environment variables, then
the TOML file named by --config, $SEAWALL_CONFIG or ./seawall.toml."""

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help=HELP
)


def load(config: Path | None, **overrides: Any) -> Settings:
    """The settings from every source, `overrides` (flags) first; a configuration error ends
    the command with one line and exit status 2."""
    try:
        return load_settings(config, **overrides)
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise fail(f"configuration error: {problems}", 2) from None
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"configuration error: {config or config_file()}: {exc}", 2) from None
    except (OSError, ValueError) as exc:
        raise fail(f"configuration error: {exc}", 2) from None


def _problem(error: ErrorDetails) -> str:
    """One validation error as `key (SEAWALL_KEY): message`, never the value (it may be a
    secret)."""
    key = ".".join(str(part) for part in error["loc"])
    if key in Settings.model_fields:
        key = f"{key} (SEAWALL_{key.upper()})"
    return f"{key}: {error['msg']}"


serve.register(app, load)
app.add_typer(db.make(load), name="db", help="Database schema migrations.")
app.add_typer(user.make(load), name="user", help="User accounts.")
app.add_typer(team.make(load), name="team", help="Teams of users.")
app.add_typer(namespace.make(load), name="namespace", help="Namespaces, members and grants.")
app.add_typer(robot.make(load), name="robot", help="Robot accounts for automation.")
app.add_typer(access.make(load), name="access", help="Explain access decisions.")
app.add_typer(audit.make(load), name="audit", help="The audit log: list, verify, archive.")
app.add_typer(vulndb.make(load), name="vulndb", help="Vulnerability data (OSV): import, status.")
app.add_typer(scan.make(load), name="scan", help="Image scan reports and rescans.")
scan.register_worker(app, load)
app.add_typer(
    policy.make(load), name="policy", help="Lifecycle policies: show, set (or what-if), history."
)
app.add_typer(exception.make(load), name="exception", help="Pull-gate exceptions, owned, expiring.")
tags = tag.make(load)
trash.register_restore(tags, load)
app.add_typer(
    tags, name="tag", help="Versions: deprecation, channels, tag listing, restoring deleted tags."
)
tag.register_pull_check(app, load)
app.add_typer(key.make(load), name="key", help="Trusted public keys for image signatures.")
app.add_typer(
    signature.make(load), name="signature", help="Image signatures and the keys they verify with."
)
app.add_typer(
    signing_key.make(load),
    name="signing-key",
    help="The keys that sign bearer tokens and promotion receipts: list, rotate, retire.",
)
promote.register(app, load)
app.add_typer(
    promote.make(load), name="promotion", help="Promotions: request, approve, reject, list."
)
app.add_typer(promote.make_stage(load), name="stage", help="Stages: the chain and its gates.")
app.add_typer(repo.make(load), name="repo", help="Repositories: owner and purpose.")
inventory.register(app, load)
gc.register(app, load)
fsck.register(app, load)
app.add_typer(retention.make(load), name="retention", help="Retention: the plan, and applying it.")
app.add_typer(trash.make(load), name="trash", help="Deleted tags: list, purge.")


def main() -> None:
    app()
