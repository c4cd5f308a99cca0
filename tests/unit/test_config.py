"""Settings: the defaults worked out from the machine (`workers`, `node_name`), and values
refused before anything runs."""

from __future__ import annotations

import os

import pytest

from seawall import config
from seawall.config import DEFAULT_WORKERS_CAP, Settings


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 2), (3, 3), (4, 4), (64, 4)])
def test_workers_default_to_one_per_cpu_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int
) -> None:
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    assert DEFAULT_WORKERS_CAP == 4
    assert Settings.model_validate({}).effective_workers == workers


def test_workers_given_are_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: {0})
    assert Settings.model_validate({"workers": 12}).effective_workers == 12


def test_usable_cpus_is_the_affinity_not_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda _pid: {3, 5})
    monkeypatch.setattr(config.os, "cpu_count", lambda: 64)
    assert config.usable_cpus() == 2


def test_the_node_is_named_after_the_host_unless_named() -> None:
    import socket
    from pathlib import Path

    assert Settings.model_validate({}).effective_node_name == socket.gethostname()
    named = Settings.model_validate({"node_name": "registry-1.eu", "data_dir": "/srv/seawall"})
    assert named.effective_node_name == "registry-1.eu"
    assert config.metrics_dir(named) == Path("/srv/seawall/tmp/metrics/registry-1.eu")


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "-x", "a b", "x" * 256])
def test_a_node_name_that_could_not_name_a_directory_is_refused(name: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="node_name"):
        Settings.model_validate({"node_name": name})


def test_a_short_signing_key_passphrase_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="signing_key_passphrase"):
        Settings.model_validate({"signing_key_passphrase": "too-short"})
    assert Settings.model_validate({"signing_key_passphrase": "p" * 32}).signing_key_passphrase


def test_server_processes_get_two_malloc_arenas_unless_the_operator_chose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    # Restored after the test: export_for_workers writes these into this process.
    for name in ("SEAWALL__RESOLVED_SETTINGS", "PROMETHEUS_MULTIPROC_DIR", "MALLOC_ARENA_MAX"):
        monkeypatch.setenv(name, "")
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    config.export_for_workers(Settings(data_dir=str(tmp_path)))
    assert os.environ["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    config.export_for_workers(Settings(data_dir=str(tmp_path)))
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
