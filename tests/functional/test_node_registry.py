"""Node heartbeats (services/nodes.py) on both databases: who is live, and the one-node rule
`seawall serve` applies on SQLite (tests/e2e/test_nodes.py starts the real servers)."""

from __future__ import annotations

import asyncio

import pytest

from seawall.db.nodes import NodeStore
from seawall.services.nodes import FORGET_SECONDS, LIVE_SECONDS, AnotherNode, NodeRegistry
from tests.support.clock import FakeClock
from tests.support.databases import Database, backend_for


def test_another_live_node_is_refused_until_it_stops_or_lapses(database: Database) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        backend = backend_for(database.url)
        await backend.start()
        try:
            store = NodeStore(backend)
            one = NodeRegistry(store, "one", "1.0", clock=clock)
            one_worker = NodeRegistry(store, "one", "1.0", clock=clock)
            one_worker.process = "4242"  # another worker process of node one
            two = NodeRegistry(store, "two", "1.0", clock=clock)

            await one.join(alone=True)
            with pytest.raises(AnotherNode, match=r"node 'one' uses this SQLite database"):
                await two.join(alone=True)
            await one.join(alone=True)  # the same node, again: welcome
            await one.beat()
            await one_worker.beat()
            [live] = await one.live()
            assert (live.name, live.processes) == ("one", 2)  # its start row went at a beat

            await one.leave()  # one worker stops: the node is still live
            with pytest.raises(AnotherNode):
                await two.join(alone=True)
            await one_worker.leave()  # the last one stops
            await two.join(alone=True)
            await two.beat()

            # A node whose processes died lapses after LIVE_SECONDS...
            clock.advance(LIVE_SECONDS + 1)
            await one.join(alone=True)
            # ... and on PostgreSQL any number of nodes may be live.
            await two.join(alone=False)
            assert {n.name for n in await two.live()} == {"one", "two"}
            clock.advance(FORGET_SECONDS + 1)
            await one.beat()  # rows gone for an hour are dropped
            rows = await backend.fetchall("SELECT name, process FROM nodes ORDER BY name")
            assert [tuple(row) for row in rows] == [("one", one.process)]
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_nodes_starting_together_on_one_database_cannot_both_join(database: Database) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        backends = [backend_for(database.url) for _ in range(6)]
        for backend in backends:
            await backend.start()
        try:
            nodes = [
                NodeRegistry(NodeStore(backend), f"node{i}", "1.0", clock=clock)
                for i, backend in enumerate(backends)
            ]
            joined = await asyncio.gather(
                *(node.join(alone=True) for node in nodes), return_exceptions=True
            )
            assert sum(result is None for result in joined) == 1, joined
            assert all(isinstance(r, AnotherNode) for r in joined if r is not None)
        finally:
            for backend in backends:
                await backend.close()

    asyncio.run(scenario())
