from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import DATABASES, RunningServer, seawall_server


@pytest.fixture(scope="session", params=DATABASES)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One real `seawall serve` per database for the whole e2e session."""
    tmp: Path = tmp_path_factory.mktemp(f"seawall-{request.param}")
    with seawall_server(tmp, database=request.param, workers=2) as server:
        yield server
