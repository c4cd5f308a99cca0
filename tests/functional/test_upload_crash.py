"""What a crash leaves in `uploads/`, and what the start-up sweep does with it (issue 14), with a
real `seawall serve` killed with SIGKILL in the middle of 20 chunked uploads, on both databases.

A session whose process died keeps its row: it looks exactly like a client that paused, so it
stays until `upload_expiry_seconds` (and, if a request was writing to it, until that request's
lease runs out). Upload files that no session names (a process that died between making a
session's file and its row, or between removing them) go at the next start. The figures are
printed (run with -s to see them)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.databases import query
from tests.support.processes import clean_env
from tests.support.server import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DATABASES,
    SEAWALL,
    database_url,
    free_port,
    stop,
    wait_ready,
)

UPLOADS = 20
FIRST_CHUNK = 256 * 1024
STREAMED = 1024 * 1024 + 64 * 1024  # past one write batch (1 MiB), so bytes reach the file
PIECE = 64 * 1024


@contextlib.contextmanager
def serving(
    data_dir: Path, db_url: str, **settings: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`seawall serve` (two workers) on the data directory and database; `settings` are more
    SEAWALL_* variables. None of the test runner's own SEAWALL_* variables leaks in."""
    port = free_port()
    env = {k: v for k, v in clean_env().items() if not k.startswith("SEAWALL_")}
    env.update(
        SEAWALL_DATABASE_URL=db_url,
        SEAWALL_ADMIN_PASSWORD=ADMIN_PASSWORD,
        SEAWALL_SCAN_IN_PROCESS="false",
        SEAWALL_GC_INTERVAL_SECONDS="0",
        **settings,
    )
    args = ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    with open(data_dir.parent / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [SEAWALL, "serve", *args, "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield proc, url
    finally:
        stop(proc)


def upload_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "uploads").iterdir()}


def sessions(db_url: str) -> dict[str, tuple[int, float]]:
    return {
        str(r[0]): (int(str(r[1])), float(str(r[2])))
        for r in query(db_url, "SELECT id, size, lease_until FROM uploads")
    }


class Uploads:
    """`UPLOADS` chunked uploads in threads: each sends a first chunk; half then stream a second
    chunk that stalls (the crash hits them writing), half wait (the crash hits them idle)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.release = threading.Event()
        self.locations: list[str] = []
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(UPLOADS)]
        self.lock = threading.Lock()

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, i: int) -> None:
        try:
            self._upload(i)
        except BaseException as exc:  # shown by the assertion on `errors`
            self.errors.append(exc)

    def _upload(self, i: int) -> None:
        with httpx.Client(base_url=self.url, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=60) as c:
            location = c.post(f"/v2/crash/app{i % 4}/blobs/uploads/").headers["Location"]
            first = c.patch(
                location,
                content=secrets.token_bytes(FIRST_CHUNK),
                headers={"Content-Range": f"0-{FIRST_CHUNK - 1}"},
            )
            assert first.status_code == 202, first.text
            with self.lock:
                self.locations.append(location)
            if i % 2:
                self.release.wait(60)  # idle between chunks
                return

            def stalling() -> Iterator[bytes]:
                for _ in range(STREAMED // PIECE):
                    yield secrets.token_bytes(PIECE)
                self.release.wait(60)  # the rest never comes

            with contextlib.suppress(httpx.HTTPError):
                c.patch(location, content=stalling())

    def join(self) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(60)


@pytest.mark.parametrize("kind", DATABASES)
def test_a_crash_during_uploads_and_the_start_up_sweep(tmp_path: Path, kind: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with database_url(kind, data_dir) as db_url:
        with serving(data_dir, db_url) as (proc, url):
            uploads = Uploads(url)
            uploads.start()
            # Every session has its first chunk, and half are writing their second.
            deadline = time.monotonic() + 60
            sizes: list[int] = []
            while time.monotonic() < deadline:
                sizes = [p.stat().st_size for p in (data_dir / "uploads").iterdir()]
                writing = sum(1 for size in sizes if size > FIRST_CHUNK)
                if len(uploads.locations) == UPLOADS and writing == UPLOADS // 2:
                    break
                time.sleep(0.02)
            assert len(uploads.locations) == UPLOADS, uploads.errors
            assert sum(1 for size in sizes if size > FIRST_CHUNK) == UPLOADS // 2, sizes
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            uploads.join()

        crashed = upload_files(data_dir)
        rows = sessions(db_url)
        assert len(crashed) == UPLOADS and set(rows) == crashed
        killed_at = time.time()
        # What a crash between making a session's file and its row leaves: files no session
        # names, minutes old; and one just made (a session starting on another node).
        orphans = {secrets.token_hex(16) for _ in range(5)}
        for name in orphans:
            path = data_dir / "uploads" / name
            path.write_bytes(b"partial" * 100)
            os.utime(path, (killed_at - 300, killed_at - 300))
        young = secrets.token_hex(16)
        (data_dir / "uploads" / young).write_bytes(b"starting")
        before = len(upload_files(data_dir))

        with serving(data_dir, db_url) as (_, url):
            deadline = time.monotonic() + 30
            while upload_files(data_dir) & orphans and time.monotonic() < deadline:
                time.sleep(0.05)
            after = upload_files(data_dir)
            # The sessions stay (idle clients, as far as anyone can tell), and so does the file
            # of a session that may be starting; the orphans went at start.
            assert after == crashed | {young}, (len(after), before)
            idle = sorted(i for i, (_, lease) in sessions(db_url).items() if lease < time.time())
            writing_ids = sorted(set(rows) - set(idle))
            assert len(idle) == len(writing_ids) == UPLOADS // 2
            # An idle session resumes where its client left it.
            location = next(loc for loc in uploads.locations if loc.endswith(idle[0]))
            with httpx.Client(base_url=url, auth=(ADMIN_USER, ADMIN_PASSWORD)) as client:
                status = client.get(location)
                assert status.status_code == 204
                assert status.headers["Range"] == f"0-{FIRST_CHUNK - 1}"
                # (a session the crash hit writing is held by that request's lease meanwhile)
                busy = next(loc for loc in uploads.locations if loc.endswith(writing_ids[0]))
                assert client.patch(busy, content=b"x").status_code == 416

        with serving(data_dir, db_url, SEAWALL_UPLOAD_EXPIRY_SECONDS="1"):
            deadline = time.monotonic() + 30
            while upload_files(data_dir) & set(idle) and time.monotonic() < deadline:
                time.sleep(0.05)
            expired = upload_files(data_dir)
            # At a 1 s expiry the start-up sweep removes the idle sessions with their files;
            # those a request was writing to wait for its lease (120 s after the crash).
            assert expired == set(writing_ids) | {young}
            assert set(sessions(db_url)) == set(writing_ids)

        print(
            f"\n[{kind}] {UPLOADS} chunked uploads killed with SIGKILL ({UPLOADS // 2} writing,"
            f" {UPLOADS // 2} idle): {len(crashed)} files and {len(rows)} sessions left;"
            f" with 6 planted orphans (5 old, 1 young) {before} files before the start-up sweep,"
            f" {len(after)} after it (default expiry); {len(expired)} after a start with a 1 s"
            f" expiry (the {len(writing_ids)} leased sessions wait for their lease)"
        )
