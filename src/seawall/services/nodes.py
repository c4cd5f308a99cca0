"""The nodes sharing one database: each `seawall serve` is one node, named by `node_name` (the
host name by default), however many worker processes it runs. Each of its server processes keeps
a heartbeat row, refreshed every `HEARTBEAT_SECONDS` and removed when it stops; a node none of
whose rows was refreshed for `LIVE_SECONDS` is gone.

SQLite is for one node: its locking and WAL index live in shared memory on one host, and a file
shared over a network file system between hosts is corrupted sooner or later. So a
`seawall serve` on SQLite joins only when no other node is live (`join(alone=True)`), which
refuses a second host pointed at the same file, while any number of `seawall serve` processes
of one host (one node name) may share it, as before.
"""

from __future__ import annotations

import os

from seawall.db.nodes import NodeRecord, NodeStore
from seawall.domain.clock import SYSTEM_CLOCK, Clock

HEARTBEAT_SECONDS = 10.0
LIVE_SECONDS = 30.0
FORGET_SECONDS = 3600.0  # a process's row is dropped this long after its last heartbeat


class AnotherNode(Exception):
    """Another node is live on a database that serves one; the message names it."""

    def __init__(self, name: str, other: NodeRecord, ago: float) -> None:
        super().__init__(
            f"node {other.name!r} uses this SQLite database (seen {ago:.0f} s ago), and SQLite"
            f" serves one node: run several nodes on PostgreSQL (database_url), or stop"
            f" {other.name!r} first (this node is {name!r}; node_name names it)"
        )
        self.other = other


class NodeRegistry:
    """This node's processes' heartbeats, and the nodes on the database."""

    def __init__(
        self, store: NodeStore, name: str, version: str, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.store = store
        self.name = name
        self.version = version
        self.clock = clock
        self.process = str(os.getpid())

    def _live_after(self) -> float:
        return self.clock.now() - LIVE_SECONDS

    async def join(self, alone: bool) -> None:
        """Register this node as starting; with `alone`, raise `AnotherNode` instead when
        another node is live."""
        now = self.clock.now()
        if not alone:
            await self.store.join(self.name, self.version, now)
            return
        others = await self.store.join_alone(self.name, self.version, now, self._live_after())
        if others:
            raise AnotherNode(self.name, others[0], now - others[0].seen_at)

    async def beat(self) -> None:
        """This process is alive."""
        now = self.clock.now()
        await self.store.beat(self.name, self.process, self.version, now, now - FORGET_SECONDS)

    async def leave(self) -> None:
        """This process stops."""
        await self.store.leave(self.name, self.process)

    async def live(self) -> list[NodeRecord]:
        return await self.store.live(self._live_after())
