"""Commands pointed at the wrong place, or at a database they cannot use, say so in one line with
a way out, create nothing, and exit non-zero; `seawall db upgrade` makes a database only when
asked. On SQLite files and PostgreSQL databases, in this process (CliRunner) except for `serve`,
whose process is the point."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from seawall.cli.main import app
from seawall.db.schema import SCHEMA_REVISION
from tests.support.cli import one_line_failure, seawall
from tests.support.server import DATABASES, SEAWALL, free_port, postgres_database

# Commands that need the registry's database, with arguments they would otherwise accept.
NEEDS_A_DATABASE = [
    ("user", "list"),
    ("user", "add", "bob", "--password-stdin"),
    ("user", "passwd", "admin", "--password-stdin"),
    ("user", "disable", "bob"),
    ("user", "site-admin", "bob"),
    ("team", "members", "ops"),
    ("team", "add", "ops"),
    ("namespace", "show", "team-a"),
    ("namespace", "member", "team-a", "alice", "reader"),
    ("robot", "add", "team-a+ci", "--scope", "team-a/ci-*=pull"),
    ("access", "explain", "alice", "team-a/app", "pull"),
    ("audit", "list"),
    ("audit", "verify"),
    ("audit", "head"),
    ("audit", "archive", "--before", "2020-01-01"),
    ("scan", "list"),
    ("scan", "show", "team-a/app:1.0"),
    ("scan", "run", "team-a/app:1.0"),
    ("vulndb", "status"),
    ("vulndb", "import", "nothing-here"),
    ("db", "current"),
    ("db", "upgrade"),
    ("worker",),
]
PASSWORD = "a-password-long-enough\n"


def _leaves(command: Any, path: str = "seawall") -> Iterator[tuple[str, Any]]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield path, command
    for name, sub in sorted((subcommands or {}).items()):
        yield from _leaves(sub, f"{path} {name}")


@pytest.mark.parametrize("path", [path for path, _ in _leaves(typer.main.get_command(app))])
def test_every_command_takes_config_and_data_dir(path: str) -> None:
    command = dict(_leaves(typer.main.get_command(app)))[path]
    options = {opt for param in command.params for opt in param.opts}
    assert {"--config", "-c", "--data-dir"} <= options


@pytest.mark.parametrize("args", NEEDS_A_DATABASE, ids=" ".join)
def test_outside_the_data_directory(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line_failure(seawall(*args, stdin=PASSWORD))
    looked = tmp_path.resolve() / "seawall-data" / "seawall.db"
    assert f"no Seawall database at {looked}" in line
    for way_out in ("--data-dir", "--config", "SEAWALL_DATA_DIR", "SEAWALL_DATABASE_URL"):
        assert way_out in line
    assert list(tmp_path.iterdir()) == [], "nothing is created"


def test_pointed_at_the_registry_they_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "registry"
    made = seawall("db", "upgrade", "--create", "--data-dir", str(data))
    assert made.exit_code == 0, made.output
    assert f"created a new Seawall database at {data / 'seawall.db'}" in made.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (elsewhere / "seawall.toml").write_text(f'data_dir = "{data}"\n')
    for how in (
        {"args": ("--data-dir", str(data))},
        {"env": {"SEAWALL_DATA_DIR": str(data)}},
        {"env": {"SEAWALL_DATABASE_URL": f"sqlite:///{data / 'seawall.db'}"}},
        {"args": ("--config", str(elsewhere / "seawall.toml"))},
        {},  # ./seawall.toml
    ):
        args: tuple[str, ...] = how.get("args", ())  # type: ignore[assignment]
        result = seawall("user", "list", *args, env=how.get("env"))  # type: ignore[arg-type]
        assert result.exit_code == 0, (how, result.output)
        assert result.stdout == "" and result.stderr == "no users\n"


def test_db_upgrade_makes_a_new_database_only_when_asked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    line = one_line_failure(seawall("db", "upgrade", "--data-dir", str(data)))
    assert f"no Seawall database at {data / 'seawall.db'}" in line and "--create" in line
    assert not data.exists()
    created = seawall("db", "upgrade", "--data-dir", str(data), "--create")
    assert created.exit_code == 0, created.output
    assert created.stdout.splitlines() == [
        f"created a new Seawall database at {data / 'seawall.db'}",
        f"schema at {SCHEMA_REVISION}",
    ]
    again = seawall("db", "upgrade", "--data-dir", str(data))
    assert again.exit_code == 0 and again.stdout == f"schema at {SCHEMA_REVISION}\n"
    bad = seawall("db", "upgrade", "--data-dir", str(data), "--revision", "nonsense")
    assert "nonsense" in one_line_failure(bad, 2)


@pytest.fixture(params=DATABASES)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The settings of a database with no Seawall tables: a SQLite path, or a new PostgreSQL
    database."""
    if request.param == "sqlite":
        yield {"SEAWALL_DATA_DIR": str(tmp_path / "data")}
    else:
        with postgres_database() as url:
            yield {"SEAWALL_DATA_DIR": str(tmp_path / "data"), "SEAWALL_DATABASE_URL": url}


def test_a_database_without_the_schema(empty_database: dict[str, str]) -> None:
    env = empty_database
    line = one_line_failure(seawall("user", "list", env=env))
    assert "no Seawall" in line and "seawall db upgrade --create" in line
    line = one_line_failure(seawall("db", "upgrade", env=env))
    assert "--create" in line
    assert seawall("db", "upgrade", "--create", env=env).exit_code == 0
    assert seawall("user", "list", env=env).stderr == "no users\n"


def test_a_database_at_another_revision(empty_database: dict[str, str]) -> None:
    env = empty_database
    assert seawall("db", "upgrade", "--create", "--revision", "0003", env=env).exit_code == 0
    line = one_line_failure(seawall("audit", "list", env=env))
    assert f"schema revision 0003; this Seawall uses {SCHEMA_REVISION}" in line
    assert "seawall db upgrade" in line
    current = seawall("db", "current", env=env)
    assert current.exit_code == 0 and "schema at 0003;" in current.stdout
    upgraded = seawall("db", "upgrade", env=env)
    assert upgraded.stdout == f"schema at {SCHEMA_REVISION} (was 0003)\n"
    assert seawall("audit", "list", env=env).exit_code == 0


def test_postgres_that_cannot_be_reached(tmp_path: Path) -> None:
    closed = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/seawall"
    missing = "postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_database_here"
    for url, why in ((closed, "cannot connect"), (missing, "does not exist")):
        for args in (("user", "list"), ("db", "upgrade", "--create"), ("db", "current")):
            line = one_line_failure(seawall(*args, env={"SEAWALL_DATABASE_URL": url}))
            assert why in line and "SEAWALL_DATABASE_URL" in line


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "seawall.db").write_text("not a database\n" * 100)
    line = one_line_failure(seawall("user", "list", "--data-dir", str(tmp_path)))
    assert "not a database" in line


@pytest.mark.parametrize(
    ("env", "file", "says"),
    [
        ({"SEAWALL_PORT": "abc"}, None, "port (SEAWALL_PORT): Input should be a valid integer"),
        ({"SEAWALL_WORKERS": "0"}, None, "workers (SEAWALL_WORKERS)"),
        ({}, "port = [", "seawall.toml: "),
        ({}, "no_such_setting = 1", "no_such_setting"),
    ],
)
def test_configuration_errors_are_one_line(
    tmp_path: Path, env: dict[str, str], file: str | None, says: str
) -> None:
    args: tuple[str, ...] = ()
    if file is not None:
        (tmp_path / "seawall.toml").write_text(file + "\n")
        args = ("--config", str(tmp_path / "seawall.toml"))
    line = one_line_failure(seawall("user", "list", *args, env=env), 2)
    assert line.startswith("seawall: configuration error: ") and says in line
    missing = seawall("audit", "list", "--config", str(tmp_path / "missing.toml"))
    assert "no such configuration file" in one_line_failure(missing, 2)


def test_a_password_prompt_needs_a_terminal(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert seawall("db", "upgrade", "--create", "--data-dir", data).exit_code == 0
    line = one_line_failure(seawall("user", "add", "bob", "--data-dir", data), 2)
    assert "--password-stdin" in line


# -- seawall serve, as a process ---------------------------------------------------------------


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    from tests.functional.test_serve import clean_env

    return subprocess.run(
        [SEAWALL, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"), *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SEAWALL_ADMIN_PASSWORD": "short"}, "admin_password (SEAWALL_ADMIN_PASSWORD)"),
        (
            {"SEAWALL_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/seawall"},
            "cannot connect",
        ),
    ],
)
def test_serve_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    result = _serve(tmp_path, **env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("seawall: ") and says in last
    assert "preparing the database failed" not in result.stderr


def test_audit_archive_to_a_place_it_cannot_write(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert seawall("db", "upgrade", "--create", "--data-dir", data).exit_code == 0
    assert seawall("team", "add", "ops", "--data-dir", data).exit_code == 0  # one audit row
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "archives"
    archive = ("audit", "archive", "--before", "2099-01-01", "--data-dir", data)
    line = one_line_failure(seawall(*archive, "--dir", str(target)))
    assert f"cannot write archives to {target}" in line
    # Nothing was removed, and nothing is left holding the archive lease.
    assert seawall("audit", "verify", "--data-dir", data).stdout.startswith(
        "audit log verified: 1 rows"
    )
    done = seawall(*archive, "--dir", str(tmp_path / "archives"))
    assert done.exit_code == 0 and done.stdout.startswith("archived rows 1..1")


def test_serve_with_tls_files_it_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    pairs = [
        (tmp_path / "missing.pem", tmp_path / "missing.key"),
        (tmp_path / "junk.pem", tmp_path / "junk.pem"),
    ]
    for cert, key in pairs:
        tls = ("--tls-cert", str(cert), "--tls-key", str(key))
        result = _serve(tmp_path, *tls)
        assert result.returncode == 2
        assert result.stderr.startswith(f"seawall: cannot use tls_cert {cert}")
        assert len(result.stderr.splitlines()) == 1
