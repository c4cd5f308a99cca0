"""The first start creates the only admin with no default password; `seawall user` manages
accounts. Against the real database files and PostgreSQL: names no account can have are refused
the same on both, though their columns differ. `seawall serve`'s preparing runs in its own child
process, as `serve` runs it; the commands run in this process."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

from seawall import bootstrap
from seawall.config import Settings
from seawall.db.backends import database_backend
from seawall.db.identities import IdentityStore, UserRecord
from seawall.domain.credentials import verify_password
from tests.support.cli import seawall as run_command
from tests.support.server import DATABASES, postgres_database


@pytest.fixture(params=DATABASES)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The settings of a registry yet to start: its data directory, and its database."""
    base = {"SEAWALL_DATA_DIR": str(tmp_path / "data")}
    if request.param == "postgres":
        with postgres_database() as url:
            yield {**base, "SEAWALL_DATABASE_URL": url}
    else:
        yield base


def seawall(env: dict[str, str], *args: str, stdin: str = "") -> Result:
    return run_command(*args, env=env, stdin=stdin)


def started(env: dict[str, str]) -> None:
    """The database as a first `seawall serve` leaves it (migrated, the first admin made)."""
    settings = Settings.model_validate(
        {"data_dir": env["SEAWALL_DATA_DIR"], "database_url": env.get("SEAWALL_DATABASE_URL", "")}
    )
    bootstrap.prepare(settings)


def prepare(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What `seawall serve` does before serving (the same child process)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from seawall.config import load_settings;"
            " from seawall.bootstrap import prepare_in_subprocess;"
            " prepare_in_subprocess(load_settings())",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def user(env: dict[str, str], name: str) -> UserRecord | None:
    settings = Settings(
        data_dir=Path(env["SEAWALL_DATA_DIR"]), database_url=env.get("SEAWALL_DATABASE_URL", "")
    )

    async def get() -> UserRecord | None:
        backend = database_backend(settings)
        await backend.start()
        try:
            return await IdentityStore(backend).user(name)
        finally:
            await backend.close()

    return asyncio.run(get())


def test_first_start_creates_admin_with_a_private_random_password(env: dict[str, str]) -> None:
    first = prepare(env)
    assert first.returncode == 0, first.stderr
    path = Path(env["SEAWALL_DATA_DIR"]) / "admin-password"
    assert str(path) in first.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 32
    assert password not in first.stderr
    admin = user(env, "admin")
    assert admin is not None and admin.site_admin and not admin.disabled
    assert verify_password(admin.password_hash, password)
    # Later starts leave the admin and the file alone.
    again = prepare(env)
    assert again.returncode == 0
    assert "admin" not in again.stderr
    assert path.read_text().strip() == password
    admin_again = user(env, "admin")
    assert admin_again is not None and admin_again.password_hash == admin.password_hash


def test_admin_password_from_the_environment(env: dict[str, str]) -> None:
    given = "a-long-operator-chosen-password"
    result = prepare({**env, "SEAWALL_ADMIN_PASSWORD": given})
    assert result.returncode == 0, result.stderr
    assert "SEAWALL_ADMIN_PASSWORD" in result.stderr
    assert given not in result.stderr
    assert not (Path(env["SEAWALL_DATA_DIR"]) / "admin-password").exists()
    admin = user(env, "admin")
    assert admin is not None and verify_password(admin.password_hash, given)


def test_user_commands(env: dict[str, str]) -> None:
    started(env)
    added = seawall(env, "user", "add", "bob", "--password-stdin", stdin="bobs-first-password\n")
    assert added.exit_code == 0, added.stderr
    bob = user(env, "bob")
    assert bob is not None and verify_password(bob.password_hash, "bobs-first-password")
    assert not bob.site_admin
    taken = seawall(env, "user", "add", "bob", "--password-stdin", stdin="another-password-x\n")
    assert taken.exit_code == 1
    assert "already exists" in taken.stderr
    short = seawall(env, "user", "add", "carol", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2
    assert "at least 12" in short.stderr
    assert user(env, "carol") is None
    bad_name = seawall(env, "user", "add", "Carol", "--password-stdin", stdin="long-enough-pass\n")
    assert bad_name.exit_code == 2
    assert "invalid user name" in bad_name.stderr
    changed = seawall(env, "user", "passwd", "bob", "--password-stdin", stdin="bobs-new-password\n")
    assert changed.exit_code == 0
    bob = user(env, "bob")
    assert bob is not None and verify_password(bob.password_hash, "bobs-new-password")
    assert seawall(env, "user", "disable", "bob").exit_code == 0
    listed = seawall(env, "user", "list").stdout.splitlines()
    assert listed == ["admin\tsite-admin", "bob\tdisabled"]
    assert seawall(env, "user", "enable", "bob").exit_code == 0
    assert seawall(env, "user", "list").stdout.splitlines()[1] == "bob\t"
    missing = seawall(env, "user", "disable", "nobody")
    assert missing.exit_code == 1
    assert "no user" in missing.stderr


def test_namespace_team_robot_and_explain(env: dict[str, str]) -> None:
    started(env)
    for name in ("dana", "erin"):
        r = seawall(env, "user", "add", name, "--password-stdin", stdin=f"{name}-password-long\n")
        assert r.exit_code == 0, r.stderr
    assert seawall(env, "team", "add", "ops").exit_code == 0
    # Names no account can have are refused, the same on both databases (PostgreSQL's column
    # holds 64 characters; SQLite would have stored anything).
    for bad_team in ("Ops Team", "x" * 65, "a\x01b"):
        refused = seawall(env, "team", "add", bad_team)
        assert refused.exit_code == 2 and "invalid team name" in refused.stderr
        assert "Traceback" not in refused.stderr
    long_user = seawall(env, "user", "add", "u" * 65, "--password-stdin", stdin="p" * 20 + "\n")
    assert long_user.exit_code == 2 and "limit is 64" in long_user.stderr
    for bad_member in ("user:" + "m" * 65, "team:Ops"):
        refused = seawall(env, "namespace", "member", "team-a", bad_member, "reader")
        assert refused.exit_code == 2, refused.stderr
    assert seawall(env, "team", "member", "ops", "erin").exit_code == 0
    assert seawall(env, "team", "members", "ops").stdout.split() == ["erin"]
    assert seawall(env, "namespace", "add", "team-a").exit_code == 0
    assert seawall(env, "namespace", "member", "team-a", "user:dana", "developer").exit_code == 0
    assert seawall(env, "namespace", "member", "team-a", "team:ops", "reader").exit_code == 0
    r = seawall(env, "namespace", "grant", "team-a", "team-a/ci-*", "team:ops", "push")
    assert r.exit_code == 0, r.stderr
    bad = seawall(env, "namespace", "grant", "team-a", "team-b/*", "team:ops", "push")
    assert bad.exit_code == 2
    assert "outside namespace" in bad.stderr
    shown = seawall(env, "namespace", "show", "team-a").stdout.splitlines()
    assert shown == [
        "team-a\tprivate",
        "sbom-referrer\toff",
        "member\tteam:ops\treader",
        "member\tuser:dana\tdeveloper",
        "grant\tteam-a/ci-*\tteam:ops\tpush",
    ]

    def explain(who: str, repo: str, action: str) -> Result:
        return seawall(env, "access", "explain", who, repo, action)

    ok = explain("dana", "team-a/app", "push")
    assert ok.exit_code == 0
    assert ok.stdout.startswith("allowed (namespace-member)")
    no = explain("dana", "team-a/app", "delete")
    assert no.exit_code == 1
    assert no.stdout.startswith("denied")
    assert "maintainer" in no.stdout
    assert explain("erin", "team-a/ci-build", "push").stdout.startswith(
        "allowed (repository-grant)"
    )
    assert explain("erin", "team-a/app", "push").exit_code == 1
    assert explain("anonymous", "team-a/app", "pull").exit_code == 1
    assert explain("admin", "anything/at-all", "delete").stdout.startswith("allowed (site-admin)")
    assert seawall(env, "namespace", "visibility", "team-a", "public").exit_code == 0
    assert explain("anonymous", "team-a/app", "pull").stdout.startswith("allowed (public-pull)")

    robot = seawall(env, "robot", "add", "team-a+ci", "--scope", "team-a/ci-*=pull,push")
    assert robot.exit_code == 0, robot.stderr
    secret = robot.stdout.strip().splitlines()[-1]
    assert secret.startswith("swr_")
    assert explain("team-a+ci", "team-a/ci-x", "push").stdout.startswith("allowed (robot-scope)")
    assert explain("team-a+ci", "team-a/app", "push").exit_code == 1
    outside = seawall(env, "robot", "add", "team-a+bad", "--scope", "team-b/*=pull")
    assert outside.exit_code == 2
    assert seawall(env, "robot", "disable", "team-a+ci").exit_code == 0
    assert explain("team-a+ci", "team-a/ci-x", "push").stdout.startswith("denied (disabled)")
