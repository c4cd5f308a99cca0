"""The deployment files cannot drift from the code: deploy/compose.yaml (which cannot run here:
no MinIO or PostgreSQL image can be pulled), deploy/example.env, the Containerfile and
docs/deployment.md name only settings that exist, with values Seawall accepts, and commands the
CLI has. A setting renamed in config.py fails here until they follow."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from seawall.cli.main import app as cli_app
from seawall.config import CONFIG_ENV, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
EXAMPLE_ENV = ROOT / "deploy" / "example.env"
CONTAINERFILE = ROOT / "Containerfile"
GUIDE = ROOT / "docs" / "deployment.md"
KNOWN = {f"SEAWALL_{key.upper()}" for key in Settings.model_fields} | {CONFIG_ENV}
SEAWALL_NAME = re.compile(r"\bSEAWALL_[A-Z0-9_]*[A-Z0-9]\b")
# ${NAME}, ${NAME:-default}, ${NAME:?message}: compose's interpolation.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def seawall_services() -> dict[str, dict[str, Any]]:
    """The services that run the Seawall image."""
    return {
        name: s for name, s in services().items() if "seawall" in str(s.get("image", "")).lower()
    }


def interpolated(value: str) -> str:
    """`value` as compose would pass it, every variable given a stand-in long enough for any
    secret setting (signing_key_passphrase wants 32 characters)."""
    return INTERPOLATION.sub(lambda m: "x" * 40, value)


def test_compose_file_is_yaml_with_the_documented_services() -> None:
    names = set(services())
    assert {"postgres", "minio", "create-bucket", "worker"} <= names
    nodes = [n for n, s in seawall_services().items() if "command" not in s]
    assert len(nodes) == 2, f"two registry nodes running the image's command, found {nodes}"
    node_names = {seawall_services()[n]["environment"]["SEAWALL_NODE_NAME"] for n in nodes}
    assert len(node_names) == 2, "each node needs its own SEAWALL_NODE_NAME"
    assert "minio/mc" in services()["create-bucket"]["image"]


@pytest.mark.parametrize("service", sorted(seawall_services()))
def test_every_seawall_variable_is_a_setting_with_a_valid_value(service: str) -> None:
    env: dict[str, str] = seawall_services()[service]["environment"]
    names = {name for name in env if name.startswith("SEAWALL_")}
    assert names - KNOWN == set(), f"{service}: not settings (config.py): {names - KNOWN}"
    values = {
        name.removeprefix("SEAWALL_").lower(): interpolated(str(value))
        for name, value in env.items()
        if name.startswith("SEAWALL_")
    }
    # model_validate checks keys and values (str -> bool, int, ...) without reading the
    # environment or a file, as the container's `seawall` would from its environment.
    Settings.model_validate(values)


def test_no_other_service_sets_seawall_variables() -> None:
    for name, service in services().items():
        if name in seawall_services():
            continue
        env = service.get("environment") or {}
        assert not [k for k in env if k.startswith("SEAWALL_")], name


def _cli_commands() -> set[str]:
    return set(getattr(typer.main.get_command(cli_app), "commands", {}))


def test_containerfile_runs_seawall_serve_with_known_settings() -> None:
    text = CONTAINERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["seawall"\]$', text, re.MULTILINE)
    cmd = re.search(r"^CMD \[\"(\w[\w-]*)\"", text, re.MULTILINE)
    assert cmd is not None and cmd.group(1) == "serve" and "serve" in _cli_commands()
    assert set(SEAWALL_NAME.findall(text)) - KNOWN == set()


def test_compose_commands_are_seawall_commands() -> None:
    for name, service in seawall_services().items():
        command = service.get("command")
        if command is not None:
            assert command[0] in _cli_commands(), f"{name}: `seawall {command[0]}` does not exist"


def test_example_env_gives_every_required_variable() -> None:
    given = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in EXAMPLE_ENV.read_text().splitlines()
        if "=" in line
    }
    required = {m.group(1) for m in re.finditer(r"\$\{(\w+):\?", COMPOSE.read_text())}
    assert required - given == set(), "deploy/example.env should list every required variable"


def test_deployment_guide_names_only_real_settings() -> None:
    text = GUIDE.read_text()
    assert set(SEAWALL_NAME.findall(text)) - KNOWN == set()
