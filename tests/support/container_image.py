"""Build Seawall's container image (the repository's `Containerfile`) on a machine that reaches
no public image registry, and run it with podman, for tests/e2e/test_container_image.py.

The Containerfile's base is a build argument (`BASE_IMAGE`, normally `python:3.11-slim-bookworm`).
Here the base is made from Debian packages instead: `mmdebstrap` writes a minimal bookworm root
file system with python3 and its venv module to a tarball, `podman import` turns that into an
image, and `podman build --build-arg BASE_IMAGE=<it>` builds the image from it. Inside the build,
apt (the builder's compilers) and pip (the dependencies) reach the same Debian mirror and package
index as this machine, over the host's network.

What is kept between runs, under `cache_dir()` (one directory per base recipe, see `base_key`):

- `base.tar`, the root file system (about 25 s to make, 170 MB);
- `store/`, the podman storage the image is imported into and built in. It is kept so that
  podman's layer cache works across runs: a run with the same Containerfile and sources rebuilds
  nothing (about 10 s), one with changed sources only re-runs the steps from `COPY src` on, and
  only a change of the dependencies in pyproject.toml installs them again (about a minute).

Everything in the store is this module's; a recipe change (packages, mirror, the machine's CA
certificates) starts a new directory and removes the others. Containers run from it are the
tests' own, removed when the test ends (or, when a run was killed first, by a run an hour later).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import ClientError, clean_env, empty_auth_file, remove_tree, run

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
# The slim Python base, from Debian's packages: python3 (3.11 in bookworm) and what
# `python3 -m venv` needs to install pip into the environment (ensurepip's bundled wheel).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# The certificates this machine trusts beyond Debian's set (a TLS-intercepting proxy's CA, say):
# copied into the base so that pip inside the build trusts what pip here trusts.
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
# Bump when the way the base is made changes, to make a new one.
RECIPE = "1"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_NAME = "localhost/seawall-test-base"
CONTAINER_PREFIX = "seawall-e2e-"
BUILD_TIMEOUT = 900.0  # seconds: a cold build installs compilers and every dependency
# Past this the store is emptied before a build (each change of dependencies adds ~0.8 GB).
STORE_LIMIT_BYTES = 12 * 1024**3
# podman raises a container's RLIMIT_NOFILE and RLIMIT_NPROC by default; a process without
# CAP_SYS_RESOURCE (this machine's root has not got it) cannot, and runc then fails with
# "error setting rlimit type 7: operation not permitted". Limits at or below ours always work.
_NOFILE = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 65536)
ULIMITS = ("--ulimit", f"nofile={_NOFILE}:{_NOFILE}", "--ulimit", "nproc=4096:4096")


@dataclass
class Timings:
    """How long each step took, for the test's report (`pytest -s` prints it)."""

    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - started))

    def report(self) -> str:
        return "\n".join(f"  {seconds:7.1f} s  {name}" for name, seconds in self.steps)


# --- what the base is made of ----------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian archive apt uses here (deb822 `.sources` or one-line `.list` files), so that
    mmdebstrap fetches from where this machine may fetch."""
    apt = Path("/etc/apt")
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
                if uris and suites and SUITE in suites.group(1).split():
                    return uris.group(1)
        else:
            for line in text.splitlines():
                # deb [OPTIONS] URI SUITE COMPONENTS...
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                    return words[1]
    return DEFAULT_MIRROR


def pip_index_url() -> str | None:
    """The package index pip uses here, when one is configured over HTTP(S) (else pip's default,
    PyPI, applies in the build too)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.findall(r"^[\w:.-]*\.index-url='(https?://[^']*)'$", proc.stdout, re.MULTILINE)
    return found[-1] if found else None


def _local_ca_files() -> list[Path]:
    if not LOCAL_CA_DIR.is_dir():
        return []
    return sorted(p for p in LOCAL_CA_DIR.rglob("*.crt") if p.is_file())


def base_key(mirror: str) -> str:
    """A name for the base recipe: what the root file system is made of and from where."""
    h = hashlib.sha256()
    h.update(json.dumps([RECIPE, SUITE, BASE_PACKAGES, mirror]).encode())
    for path in _local_ca_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/seawall-image, else ~/.cache/seawall-image."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "seawall-image"


def make_rootfs(tarball: Path, mirror: str, mmdebstrap: str) -> None:
    """Write a minimal bookworm root file system with BASE_PACKAGES to `tarball`."""
    hooks = []
    if _local_ca_files():
        hooks += [
            f"--customize-hook=copy-in {LOCAL_CA_DIR} /usr/local/share",
            '--customize-hook=chroot "$1" update-ca-certificates',
        ]
    partial = tarball.with_suffix(".partial.tar")
    run(
        [
            mmdebstrap,
            "--quiet",
            "--variant=minbase",
            "--include=" + ",".join(BASE_PACKAGES),
            # The mirror may serve a snapshot whose Release files are past their Valid-Until.
            '--aptopt=Acquire::Check-Valid-Until "false"',
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            *hooks,
            SUITE,
            str(partial),
            mirror,
        ],
        env=clean_env(),
        timeout=600,
    )
    partial.rename(tarball)


# --- podman, with its storage in the cache -----------------------------------------------------


class ImageStore:
    """podman whose storage is `<cache>/<key>/store`, kept between runs (its layer cache)."""

    def __init__(self, podman: str, home: Path, key: str) -> None:
        self.home = home
        store = home / "store"
        # podman keeps its run root's path in its database, so it must be the same every run,
        # and short (it refuses one longer than 50 characters): one per recipe under /tmp.
        self.run_dir = Path(f"/tmp/seawall-image-{key}")
        for d in (store / "tmp", self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        registries = store / "registries.conf"
        registries.write_text("unqualified-search-registries = []\n")
        self.env = clean_env(
            CONTAINERS_REGISTRIES_CONF=str(registries),
            REGISTRY_AUTH_FILE=str(empty_auth_file(store / "auth.json")),
            TMPDIR=str(store / "tmp"),
        )
        self.base = [
            podman,
            "--root",
            str(store / "storage"),
            "--runroot",
            str(self.run_dir / "run"),
            "--tmpdir",
            str(self.run_dir / "libpod"),
            "--storage-driver",
            "overlay",
            "--volumepath",
            str(store / "volumes"),
            "--network-config-dir",
            str(store / "networks"),
            "--events-backend",
            "none",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def podman(
        self, *args: str, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.base, *args], env=self.env, check=check, timeout=timeout)

    def size(self) -> int:
        proc = subprocess.run(
            ["du", "-sxb", str(self.home / "store")], capture_output=True, text=True, check=False
        )
        return int(proc.stdout.split()[0]) if proc.returncode == 0 and proc.stdout else 0


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One test run at a time makes or builds in a cache directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_stale_containers(store: ImageStore) -> None:
    """Containers of an earlier run that was killed before it could remove them (an hour old:
    a run that is still going has removed its own long before), and volumes an hour unused."""
    listed = store.podman(
        "ps", "--all", "--filter", f"name=^{CONTAINER_PREFIX}", "--format", "json"
    )
    for container in json.loads(listed.stdout or "[]"):
        if time.time() - int(container.get("Created") or 0) > 3600:
            store.podman("rm", "--force", "--volumes", container["Id"], check=False)
    store.podman("volume", "prune", "--force", "--filter", "until=1h", check=False)


def _forget_other_recipes(cache: Path, key: str) -> None:
    for old in cache.iterdir():
        if old.is_dir() and old.name != key and re.fullmatch(r"[0-9a-f]{16}", old.name):
            remove_tree(old)
            remove_tree(Path(f"/tmp/seawall-image-{old.name}"))


@dataclass
class BuiltImage:
    store: ImageStore
    image_id: str
    base: str
    timings: Timings


def build_image(podman: str, mmdebstrap: str, timings: Timings) -> BuiltImage:
    """The Containerfile built on a base made from Debian packages (cached; see the module)."""
    mirror = debian_mirror()
    key = base_key(mirror)
    cache = cache_dir()
    home = cache / key
    with _locked(cache / "lock"):
        _forget_other_recipes(cache, key)
        home.mkdir(parents=True, exist_ok=True)
        tarball = home / "base.tar"
        if tarball.is_file():
            timings.steps.append(("base root file system: cached", 0.0))
        else:
            with timings.step(f"base root file system: mmdebstrap {SUITE} from {mirror}"):
                make_rootfs(tarball, mirror, mmdebstrap)
        store = ImageStore(podman, home, key)
        _remove_stale_containers(store)
        if store.size() > STORE_LIMIT_BYTES:
            with timings.step("emptying the image store (over its size limit)"):
                remove_tree(home / "store")
                store = ImageStore(podman, home, key)
        base = f"{BASE_NAME}:{key}"
        if store.podman("image", "exists", base, check=False).returncode == 0:
            timings.steps.append(("base image: cached", 0.0))
        else:
            with timings.step("base image: podman import"):
                store.podman("import", str(tarball), base, timeout=300)
        iidfile = home / f"iid-{secrets.token_hex(4)}"
        build_args = ["--build-arg", f"BASE_IMAGE={base}"]
        index = pip_index_url()
        if index:
            build_args += ["--build-arg", f"PIP_INDEX_URL={index}"]
        try:
            with timings.step("podman build (layers cached from earlier runs are reused)"):
                store.podman(
                    "build",
                    # HEALTHCHECK is a Docker image format field; podman drops it from OCI ones.
                    "--format",
                    "docker",
                    "--network",
                    "host",
                    *ULIMITS,
                    *build_args,
                    "--iidfile",
                    str(iidfile),
                    "--file",
                    str(REPO / "Containerfile"),
                    str(REPO),
                    timeout=BUILD_TIMEOUT,
                )
            image_id = iidfile.read_text().strip()
        finally:
            iidfile.unlink(missing_ok=True)
    return BuiltImage(store, image_id, base, timings)


# --- a running container -----------------------------------------------------------------------


@dataclass
class Container:
    """A Seawall container on the host's network, listening on 127.0.0.1:`port`."""

    store: ImageStore
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.store.podman(*args, check=check)

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.podman("exec", self.name, *argv, check=check)

    def logs(self) -> str:
        proc = self.podman("logs", self.name, check=False)
        return f"--- container {self.name} log\n{proc.stdout}{proc.stderr}"

    def inspect(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.podman("container", "inspect", self.name).stdout)[0]
        return info

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.inspect()["State"]["Running"]:
                raise ClientError(f"the container stopped while starting\n{self.logs()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise ClientError(f"/readyz did not answer 200 within {timeout:.0f}s\n{self.logs()}")

    def stop(self, timeout: int = 30) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; the exit code."""
        self.podman("stop", "--time", str(timeout), self.name)
        return int(self.inspect()["State"]["ExitCode"])

    def remove(self) -> None:
        self.podman("rm", "--force", "--volumes", self.name, check=False)


@contextlib.contextmanager
def running_container(
    image: BuiltImage,
    port: int,
    env: dict[str, str],
    volume: str | None = None,
) -> Iterator[Container]:
    """`podman run` the image with its own entrypoint and command (`seawall serve`), on the
    host's network (SEAWALL_HOST/SEAWALL_PORT in `env` choose the address); with `volume`, that
    named volume is the data directory, else the image's anonymous one. Removed afterwards."""
    name = f"{CONTAINER_PREFIX}{secrets.token_hex(4)}"
    argv = ["run", "--detach", "--name", name, "--network", "host", *ULIMITS]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    if volume is not None:
        argv += ["--volume", f"{volume}:/var/lib/seawall"]
    container = Container(image.store, name, port)
    try:
        image.store.podman(*argv, image.image_id)
        yield container
    finally:
        container.remove()
