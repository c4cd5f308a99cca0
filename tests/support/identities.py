"""Set up users, teams, robots and namespaces directly in a running test server's database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from seawall.cli import store as cli_store
from seawall.config import Settings
from seawall.db.identities import IdentityStore
from seawall.domain.credentials import hash_password
from seawall.domain.rights import Role
from tests.support.server import RunningServer

T = TypeVar("T")
ROLES = list(Role)


def with_identities(server: RunningServer, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    settings = Settings(data_dir=Path(server.data_dir), database_url=server.database_url)
    return cli_store.with_identities(settings, work)


def add_user(server: RunningServer, name: str, password: str) -> None:
    hashed = hash_password(password)

    async def work(ids: IdentityStore) -> None:
        assert await ids.create_user(name, hashed)

    with_identities(server, work)


def add_namespace(
    server: RunningServer, name: str, members: dict[str, Role], public: bool = False
) -> None:
    async def work(ids: IdentityStore) -> None:
        await ids.create_namespace(name, public)
        for principal, role in members.items():
            assert await ids.set_member(name, principal, ROLES.index(role))

    with_identities(server, work)
