"""Settings: the defaults worked out from the machine (`workers`)."""

from __future__ import annotations

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
