"""Start, drive and stop the real registry clients of the e2e client matrix.

* docker: the docker CLI against a private dockerd, which runs on a private containerd;
* podman: no daemon; storage, run and tmp dirs and registries.conf all under a temp dir;
* ctr: containerd's own CLI against the same private containerd, in its own namespace.

Every daemon is started here with all of its state under a temp dir, polled until it answers,
and stopped by the PID that was started; anything still mounted under the temp dir is then
unmounted and the dir removed. All of this needs root.

Each client is wrapped in a `Client` with the same small interface (load an OCI layout into the
local store, push, remove, pull, inspect), so the tests can treat them alike. What differs is
recorded on the client: docker and podman re-serialise the manifest and recompress the layers
on push (only the config and the diff_ids survive), ctr pushes every blob byte for byte.

Every client logs in to a registry before it pushes or pulls (`Client.login`): docker and podman
with `login --password-stdin`, skopeo through an auth file, ctr with `--user` on each command (it
has no other way; the password is a test secret and is masked in failure messages).
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import oras.client

from tests.support.layouts import OCI_INDEX, OCI_MANIFEST, Layout, add_image
from tests.support.processes import (
    COMMAND_TIMEOUT,
    DAEMON_START_TIMEOUT,
    ClientError,
    Daemon,
    DaemonError,
    auth_file,
    clean_env,
    empty_auth_file,
    log_tail,
    remove_tree,
    run,
    sha256,
    start_daemon,
    stop_daemon,
    text_of,
    wait_daemon,
)
from tests.support.server import RunningServer, require_tool

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))

# --- images ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceImage:
    """The image every client starts from: an OCI layout on disk, with what it is made of."""

    layout: Path
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]  # compressed (tar+gzip) layer blobs
    diff_ids: tuple[str, ...]  # uncompressed layers, from the config

    def blob(self, digest: str) -> bytes:
        return (self.layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def build_source_image(path: Path, seed: str, tag: str = "v1", layers: int = 3) -> SourceImage:
    """A linux/amd64 image with `layers` layers and a runnable-looking config, tagged `tag`."""
    layout = Layout(path)
    desc = add_image(layout, seed, layers=layers, arch="amd64", os_name="linux")
    layout.tag(desc, tag)
    blobs = path / "blobs" / "sha256"
    manifest = json.loads((blobs / desc.digest.removeprefix("sha256:")).read_bytes())
    config_digest = manifest["config"]["digest"]
    config = json.loads((blobs / config_digest.removeprefix("sha256:")).read_bytes())
    return SourceImage(
        layout=path,
        tag=tag,
        manifest_digest=desc.digest,
        config_digest=config_digest,
        layer_digests=tuple(layer["digest"] for layer in manifest["layers"]),
        diff_ids=tuple(config["rootfs"]["diff_ids"]),
    )


def layout_tar(src: SourceImage, dest: Path) -> Path:
    """The OCI layout as a tar archive (what `ctr images import` reads)."""
    with tarfile.open(dest, "w") as tar:
        for item in sorted(src.layout.rglob("*")):
            tar.add(item, arcname=str(item.relative_to(src.layout)), recursive=False)
    return dest


@dataclass(frozen=True)
class LocalImage:
    """An image as a client's local store sees it."""

    config_digest: str  # the image ID for docker and podman
    diff_ids: tuple[str, ...]
    architecture: str
    os: str
    # Digest of the manifest the image was pulled with or pushed as, as the client records it.
    manifest_digest: str | None
    # Compressed layer digests, where the client keeps the registry's blobs (ctr).
    layer_digests: tuple[str, ...] | None = None


def _repository(ref: str) -> str:
    """`host:port/name:tag` or `host:port/name@sha256:...` -> `host:port/name`."""
    if "@" in ref:
        return ref.split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    return name if "/" not in tag else ref


def split_ref(ref: str) -> tuple[str, str, str]:
    """`host:port/name:tag` (or `@digest`) -> (host:port, name, tag-or-digest)."""
    host, _, rest = ref.partition("/")
    if "@" in rest:
        name, _, reference = rest.partition("@")
    else:
        name, _, reference = rest.rpartition(":")
    return host, name, reference


# --- the clients ----------------------------------------------------------------------------


class Client:
    name = ""
    # Pushes the manifest and every blob byte for byte, so all digests survive a round trip.
    keeps_digests = False

    def trust(self, host: str) -> None:
        """Let the client talk plain HTTP to the registry at `host`."""

    def login(self, host: str, username: str, password: str) -> None:
        """Use these credentials for the registry at `host` from now on (before pushing)."""
        raise NotImplementedError

    def load(self, src: SourceImage, ref: str) -> None:
        """Put the source image into the local store, named `ref` (and nothing else)."""
        raise NotImplementedError

    def push(self, ref: str) -> str:
        """Push `ref`; return the digest of the manifest the client pushed."""
        raise NotImplementedError

    def push_media_type(self, src: SourceImage) -> str:
        """The manifest media type this client pushes a loaded source image as."""
        raise NotImplementedError

    def pull(self, ref: str) -> None:
        raise NotImplementedError

    def remove(self, ref: str) -> None:
        """Delete the image (not just the name) from the local store."""
        raise NotImplementedError

    def inspect(self, ref: str) -> LocalImage | None:
        """The image named `ref` in the local store, or None."""
        raise NotImplementedError


class Skopeo:
    """skopeo, used to convert the OCI layout for `docker load` and as an independent puller."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.auth_file = empty_auth_file(tmp / "auth.json")
        self.credentials: dict[str, tuple[str, str]] = {}
        self.env = clean_env(TMPDIR=str(tmp), REGISTRY_AUTH_FILE=str(self.auth_file))

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(["skopeo", "--insecure-policy", *args], env=self.env)

    def login(self, host: str, username: str, password: str) -> None:
        """Keep the credentials for `host` in the auth file (REGISTRY_AUTH_FILE) skopeo reads."""
        self.credentials[host] = (username, password)
        auth_file(self.auth_file, self.credentials)

    def fetch(self, ref: str, dest: Path) -> tuple[str, dict[str, Any]]:
        """Copy `ref` into a `dir:` as it is on the registry; verify every blob it wrote.

        Returns the manifest's digest and the manifest.
        """
        self("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}")
        raw = (dest / "manifest.json").read_bytes()
        manifest = json.loads(raw)
        wanted = [manifest["config"], *manifest["layers"]]
        for desc in wanted:
            blob = dest / desc["digest"].removeprefix("sha256:")
            assert blob.is_file(), f"skopeo did not fetch {desc['digest']} of {ref}"
            data = blob.read_bytes()
            assert sha256(data) == desc["digest"], f"blob {desc['digest']} of {ref} is corrupt"
            assert len(data) == desc["size"], f"blob {desc['digest']} of {ref} has the wrong size"
        return sha256(raw), manifest


class LoginClient(Client):
    """A client with a `login` command that asks the registry (docker, podman): `login` runs it
    once per host and credentials."""

    logged_in: dict[str, tuple[str, str]]

    def login(self, host: str, username: str, password: str) -> None:
        if self.logged_in.get(host) != (username, password):
            self.try_login(host, username, password, check=True)
            self.logged_in[host] = (username, password)

    def try_login(
        self, host: str, username: str, password: str, *, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """The client's own login command; fails (ClientError) only with `check`."""
        raise NotImplementedError


class DockerClient(LoginClient):
    name = "docker"

    def __init__(self, tmp: Path, daemon: Daemon, socket: Path, daemon_json: Path) -> None:
        self.tmp = tmp
        self.daemon = daemon
        self.daemon_json = daemon_json
        self.skopeo = Skopeo(tmp / "skopeo")
        self.env = clean_env(DOCKER_HOST=f"unix://{socket}", DOCKER_CONFIG=str(tmp / "cli"))
        self.logged_in: dict[str, tuple[str, str]] = {}

    def docker(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["docker", *args],
            env=env or self.env,
            check=check,
            context=self.daemon.log,
            stdin=stdin,
        )

    def try_login(
        self,
        host: str,
        username: str,
        password: str,
        *,
        config_dir: Path | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """`docker login HOST --username USERNAME --password-stdin` (dockerd checks the password
        with the registry); with `config_dir`, the credentials are kept there, not in the
        client's own config."""
        env = self.env if config_dir is None else {**self.env, "DOCKER_CONFIG": str(config_dir)}
        argv = ["login", host, "--username", username, "--password-stdin"]
        return self.docker(*argv, check=check, env=env, stdin=password)

    def ready(self) -> bool:
        return self.docker("info", "--format", "{{.ServerVersion}}", check=False).returncode == 0

    def _insecure(self) -> dict[str, Any]:
        out = self.docker("info", "--format", "{{json .RegistryConfig.IndexConfigs}}").stdout
        return json.loads(out) or {}

    def trust(self, host: str) -> None:
        """Add `host` to insecure-registries in daemon.json and reload dockerd (SIGHUP).

        127.0.0.0/8 is insecure by default, but say so explicitly: the daemon is shared by the
        whole session, and each database's registry listens on a port of its own.
        """
        config = json.loads(self.daemon_json.read_text())
        if host in config["insecure-registries"]:
            return
        config["insecure-registries"].append(host)
        self.daemon_json.write_text(json.dumps(config, indent=2))
        self.daemon.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while (index := self._insecure().get(host)) is None or index.get("Secure", True):
            if time.monotonic() > deadline:
                raise DaemonError(
                    f"dockerd did not reload insecure-registries\n{self.daemon.log()}"
                )
            time.sleep(0.1)

    def load(self, src: SourceImage, ref: str) -> None:
        archive = self.tmp / f"load-{secrets.token_hex(4)}.tar"
        self.skopeo("copy", f"oci:{src.layout}:{src.tag}", f"docker-archive:{archive}:{ref}")
        try:
            self.docker("load", "--input", str(archive))
        finally:
            archive.unlink(missing_ok=True)

    def push(self, ref: str) -> str:
        out = self.docker("push", ref).stdout
        found = re.search(r"digest: (sha256:[0-9a-f]{64}) size: \d+", out)
        assert found, f"no digest in the output of docker push:\n{out}"
        return found.group(1)

    def push_media_type(self, src: SourceImage) -> str:
        return DOCKER_MANIFEST  # docker push always re-serialises to Docker schema 2

    def pull(self, ref: str) -> None:
        self.docker("pull", ref)

    def remove(self, ref: str) -> None:
        self.docker("image", "rm", ref)

    def inspect(self, ref: str) -> LocalImage | None:
        proc = self.docker("image", "inspect", ref, check=False)
        if proc.returncode != 0:
            if "no such image" in proc.stderr.lower():
                return None
            raise ClientError(f"docker image inspect {ref} failed:\n{proc.stderr}")
        info = json.loads(proc.stdout)[0]
        repo = _repository(ref)
        digests = [
            d.split("@", 1)[1] for d in info.get("RepoDigests") or [] if d.startswith(repo + "@")
        ]
        return LocalImage(
            config_digest=info["Id"],
            diff_ids=tuple(info["RootFS"]["Layers"]),
            architecture=info["Architecture"],
            os=info["Os"],
            manifest_digest=digests[0] if digests else None,
        )


class PodmanClient(LoginClient):
    name = "podman"

    def __init__(self, tmp: Path, runroot: Path) -> None:
        self.tmp = tmp
        self.registries_conf = tmp / "registries.conf"
        self.registries_conf.write_text("unqualified-search-registries = []\n")
        (tmp / "tmp").mkdir(exist_ok=True)
        self.logged_in: dict[str, tuple[str, str]] = {}
        # `podman login` writes the credentials here; push and pull read them.
        self.env = clean_env(
            CONTAINERS_REGISTRIES_CONF=str(self.registries_conf),
            REGISTRY_AUTH_FILE=str(empty_auth_file(tmp / "auth.json")),
            TMPDIR=str(tmp / "tmp"),
        )
        self.base = [
            "podman",
            "--root",
            str(tmp / "root"),
            "--runroot",
            str(runroot),
            "--storage-driver",
            "vfs",
            "--tmpdir",
            str(tmp / "libpod"),
            "--volumepath",
            str(tmp / "volumes"),
            "--network-config-dir",
            str(tmp / "networks"),
            "--events-backend",
            "none",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def podman(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.base, *args], env=self.env, check=check, stdin=stdin)

    def try_login(
        self,
        host: str,
        username: str,
        password: str,
        *,
        authfile: Path | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """`podman login --password-stdin` (podman checks the password with the registry);
        with `authfile`, the credentials are kept there, not in the client's REGISTRY_AUTH_FILE."""
        argv = ["login", "--tls-verify=false", "--username", username, "--password-stdin"]
        if authfile is not None:
            argv += ["--authfile", str(authfile)]
        return self.podman(*argv, host, check=check, stdin=password)

    def trust(self, host: str) -> None:
        conf = self.registries_conf.read_text()
        entry = f'[[registry]]\nlocation = "{host}"\ninsecure = true\n'
        if entry not in conf:
            self.registries_conf.write_text(conf + "\n" + entry)

    def load(self, src: SourceImage, ref: str) -> None:
        image_id = self.podman("pull", "--quiet", f"oci:{src.layout}:{src.tag}").stdout.strip()
        self.podman("tag", image_id, ref)
        info = json.loads(self.podman("image", "inspect", image_id).stdout)[0]
        for name in info.get("RepoTags") or []:  # drop the name podman made up for the layout
            if name != ref:
                self.podman("untag", image_id, name)

    def push(self, ref: str) -> str:
        digest_file = self.tmp / f"digest-{secrets.token_hex(4)}"
        self.podman("push", "--tls-verify=false", "--digestfile", str(digest_file), ref)
        try:
            return digest_file.read_text().strip()
        finally:
            digest_file.unlink(missing_ok=True)

    def push_media_type(self, src: SourceImage) -> str:
        return OCI_MANIFEST  # podman keeps the format of the image it pushes (here, OCI)

    def pull(self, ref: str) -> None:
        self.podman("pull", "--tls-verify=false", ref)

    def remove(self, ref: str) -> None:
        self.podman("image", "rm", ref)

    def inspect(self, ref: str) -> LocalImage | None:
        proc = self.podman("image", "inspect", ref, check=False)
        if proc.returncode != 0:
            if "image not known" in proc.stderr.lower():
                return None
            raise ClientError(f"podman image inspect {ref} failed:\n{proc.stderr}")
        info = json.loads(proc.stdout)[0]
        return LocalImage(
            config_digest="sha256:" + info["Id"],
            diff_ids=tuple(info["RootFS"]["Layers"]),
            architecture=info["Architecture"],
            os=info["Os"],
            manifest_digest=info.get("Digest") or None,
        )


@dataclass
class Containerd:
    daemon: Daemon
    socket: Path


class CtrClient(Client):
    name = "ctr"
    keeps_digests = True

    def __init__(self, tmp: Path, containerd: Containerd, namespace: str = "seawall-e2e") -> None:
        self.tmp = tmp
        self.containerd = containerd
        self.namespace = namespace
        self.env = clean_env()
        self.credentials: dict[str, str] = {}  # host -> "user:password", for --user

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", "--address", str(self.containerd.socket), "--namespace", self.namespace]
        return run([*argv, *args], env=self.env, check=check, context=self.containerd.daemon.log)

    def login(self, host: str, username: str, password: str) -> None:
        """ctr has no login: it sends `--user USER:PASSWORD` with each push and pull."""
        self.credentials[host] = f"{username}:{password}"

    def _user(self, ref: str) -> list[str]:
        creds = self.credentials.get(split_ref(ref)[0])
        return ["--user", creds] if creds else []

    def load(self, src: SourceImage, ref: str) -> None:
        # `import --base-name NAME` names the image NAME:<the layout's ref.name annotation>.
        repo, _, tag = ref.rpartition(":")
        assert tag == src.tag, f"ctr can only import {src.layout} as <name>:{src.tag}"
        archive = layout_tar(src, self.tmp / f"import-{secrets.token_hex(4)}.tar")
        try:
            self.ctr("images", "import", "--base-name", repo, str(archive))
        finally:
            archive.unlink(missing_ok=True)

    def _target(self, ref: str) -> tuple[str, str] | None:
        """(media type, digest) of the manifest the image `ref` points at."""
        for line in self.ctr("images", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == ref:
                return fields[1], fields[2]
        return None

    def _content(self, digest: str) -> bytes:
        argv = ["ctr", "--address", str(self.containerd.socket), "--namespace", self.namespace]
        proc = subprocess.run(
            [*argv, "content", "get", digest],
            env=self.env,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise ClientError(f"ctr content get {digest} failed:\n{text_of(proc.stderr)}")
        return proc.stdout

    def push(self, ref: str) -> str:
        target = self._target(ref)
        assert target, f"ctr has no image {ref} to push"
        self.ctr("images", "push", "--plain-http", *self._user(ref), ref)
        return target[1]  # ctr pushes the manifest it has, byte for byte

    def push_media_type(self, src: SourceImage) -> str:
        return OCI_MANIFEST

    def pull(self, ref: str) -> None:
        # Unpacking checks every layer against the config's diff_ids.
        self.ctr(
            "images", "pull", "--plain-http", *self._user(ref), "--platform", "linux/amd64", ref
        )

    def remove(self, ref: str) -> None:
        target = self._target(ref)
        self.ctr("images", "rm", "--sync", ref)  # --sync: garbage-collect the content now
        if target:
            stored = self.ctr("content", "ls", "--quiet").stdout.split()
            assert target[1] not in stored, f"ctr kept {target[1]} after removing {ref}"

    def inspect(self, ref: str) -> LocalImage | None:
        target = self._target(ref)
        if target is None:
            return None
        manifest = json.loads(self._content(target[1]))
        config = json.loads(self._content(manifest["config"]["digest"]))
        return LocalImage(
            config_digest=manifest["config"]["digest"],
            diff_ids=tuple(config["rootfs"]["diff_ids"]),
            architecture=config["architecture"],
            os=config["os"],
            manifest_digest=target[1],
            layer_digests=tuple(layer["digest"] for layer in manifest["layers"]),
        )


# --- oras-py --------------------------------------------------------------------------------


def oras_client(
    registry: RunningServer, config_dir: Path, password: str | None = None, backend: str = "basic"
) -> oras.client.OrasClient:
    """oras-py logged in to `registry` as its admin (with `password`, the admin's by default).

    `login()` checks nothing with the registry (it reports success with any password): it gives
    the credentials to the client's auth backend and writes them to a docker config, here under
    `config_dir` rather than ~/.docker. Requests are authenticated only when challenged.

    The default backend is "basic": on a 401 it retries with Basic credentials, which /v2/
    accepts. oras-py 0.2's "token" backend keeps one bearer token per client for every scope:
    the token it gets for its first request (a HEAD, scope `pull`) is sent again for the upload
    that needs `push` and the push fails (oras-project/oras-py#187). It is fine for pulls.
    """
    client = oras.client.OrasClient(hostname=registry.host, insecure=True, auth_backend=backend)
    config_dir.mkdir(parents=True, exist_ok=True)
    client.login(
        registry.username,
        registry.password if password is None else password,
        hostname=registry.host,
        config_path=str(config_dir / "config.json"),
    )
    return client


# --- starting the clients -------------------------------------------------------------------


@contextmanager
def containerd_daemon(tmp: Path) -> Iterator[Containerd]:
    """A private containerd: root, state, sockets and opt dir under `tmp`, no CRI plugin."""
    require_tool("containerd")
    require_tool("ctr")
    state = tmp / "ctd"
    socket = state / "sock"
    config = tmp / "containerd.toml"
    config.write_text(
        "\n".join(
            [
                "version = 2",
                f'root = "{state / "root"}"',
                f'state = "{state / "state"}"',
                "disabled_plugins = [",
                '  "io.containerd.grpc.v1.cri",',
                '  "io.containerd.snapshotter.v1.aufs",',
                '  "io.containerd.snapshotter.v1.btrfs",',
                '  "io.containerd.snapshotter.v1.devmapper",',
                '  "io.containerd.snapshotter.v1.zfs",',
                "]",
                "[grpc]",
                f'  address = "{socket}"',
                "[ttrpc]",
                f'  address = "{socket}.ttrpc"',
                '[plugins."io.containerd.internal.v1.opt"]',  # default: /opt/containerd
                f'  path = "{state / "opt"}"',
                "",
            ]
        )
    )
    env = clean_env()
    daemon = start_daemon(
        "containerd", ["containerd", "--config", str(config)], tmp / "containerd.log", env
    )
    try:

        def ready() -> bool:
            argv = ["ctr", "--address", str(socket), "version"]
            return subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode == 0

        wait_daemon(daemon, ready, DAEMON_START_TIMEOUT)
        yield Containerd(daemon, socket)
    finally:
        stop_daemon(daemon)
        remove_tree(tmp)


@contextmanager
def docker_daemon(tmp: Path, containerd: Containerd) -> Iterator[DockerClient]:
    """A private dockerd on `containerd`: no iptables, no bridge, all state under `tmp`."""
    require_tool("dockerd")
    require_tool("docker")
    require_tool("skopeo")  # to turn the OCI layout into something `docker load` reads
    root = tmp / "dockerd"
    root.mkdir(parents=True, exist_ok=True)
    socket = root / "sock"
    daemon_json = tmp / "daemon.json"
    daemon_json.write_text(
        json.dumps(
            {
                "insecure-registries": [],
                # dockerd 20.10 otherwise writes its trust key to /etc/docker/key.json.
                "deprecated-key-path": str(root / "key.json"),
            },
            indent=2,
        )
    )
    argv = [
        "dockerd",
        "--config-file",
        str(daemon_json),
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(root / "exec"),
        "--pidfile",
        str(root / "dockerd.pid"),
        "--host",
        f"unix://{socket}",
        "--containerd",
        str(containerd.socket),
        "--iptables=false",
        "--ip-masq=false",
        "--ip-forward=false",
        "--bridge=none",
    ]
    daemon = start_daemon("dockerd", argv, tmp / "dockerd.log", clean_env())
    try:
        client = DockerClient(tmp, daemon, socket, daemon_json)
        wait_daemon(daemon, client.ready, DAEMON_START_TIMEOUT)
        yield client
    finally:
        stop_daemon(daemon)
        remove_tree(tmp)


@contextmanager
def podman_client(tmp: Path) -> Iterator[PodmanClient]:
    """podman with storage (vfs), run dir, tmp dirs and registries.conf under `tmp`."""
    require_tool("podman")
    # podman refuses a run root path longer than 50 characters, and pytest's temporary
    # directories (more so under pytest-xdist) are longer: it gets a short one of its own.
    runroot = Path(tempfile.mkdtemp(prefix="seawall-podman-", dir="/tmp"))
    try:
        client = PodmanClient(tmp, runroot)
        proc = client.podman("version", "--format", "{{.Client.Version}}", check=False)
        if proc.returncode != 0:
            raise DaemonError(f"podman does not work here:\n{proc.stdout}\n{proc.stderr}")
        yield client
    finally:
        remove_tree(tmp)
        remove_tree(runroot)


@contextmanager
def ctr_client(tmp: Path, containerd: Containerd) -> Iterator[CtrClient]:
    try:
        yield CtrClient(tmp, containerd)
    finally:
        remove_tree(tmp)


# --- what the registry holds ----------------------------------------------------------------


def verify_registry_image(
    registry: RunningServer,
    ref: str,
    *,
    media_type: str,
    digest: str,
    src: SourceImage,
    exact: bool,
) -> dict[str, Any]:
    """Check with plain HTTP what a client pushed as `ref`; return the manifest.

    The manifest is served by tag and by digest with the media type the client pushed it as
    and the digest the client reported; the config is the source's, byte for byte; every layer
    blob matches its descriptor and decompresses to the source's diff_id. With `exact`, the
    manifest and every layer are the source's own.
    """
    _, name, tag = split_ref(ref)
    with httpx.Client(
        base_url=registry.url, auth=registry.auth, timeout=30, follow_redirects=True
    ) as http:
        by_tag = http.get(f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
        assert by_tag.status_code == 200, f"GET manifest {ref}: {by_tag.status_code} {by_tag.text}"
        served_type = by_tag.headers.get("content-type", "").split(";")[0].strip()
        assert served_type == media_type, f"{ref} served as {served_type}, pushed as {media_type}"
        assert sha256(by_tag.content) == digest, f"{ref}: the body is not the pushed manifest"
        assert by_tag.headers.get("docker-content-digest") == digest
        manifest: dict[str, Any] = by_tag.json()
        assert manifest.get("mediaType") == media_type

        by_digest = http.get(f"/v2/{name}/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT})
        assert by_digest.status_code == 200, (
            f"GET manifest {name}@{digest}: {by_digest.status_code}"
        )
        assert by_digest.content == by_tag.content
        assert by_digest.headers.get("content-type", "").split(";")[0].strip() == media_type

        head = http.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
        assert head.status_code == 200
        assert head.headers.get("docker-content-digest") == digest
        assert int(head.headers.get("content-length", -1)) == len(by_tag.content)

        assert manifest["config"]["digest"] == src.config_digest, "the config was rewritten"
        config = http.get(f"/v2/{name}/blobs/{src.config_digest}")
        assert config.status_code == 200, f"GET config of {ref}: {config.status_code}"
        assert config.content == src.blob(src.config_digest)

        layers = manifest["layers"]
        assert len(layers) == len(src.diff_ids), f"{ref} has {len(layers)} layers"
        for desc, diff_id in zip(layers, src.diff_ids, strict=True):
            blob = http.get(f"/v2/{name}/blobs/{desc['digest']}")
            assert blob.status_code == 200, f"GET layer {desc['digest']}: {blob.status_code}"
            assert sha256(blob.content) == desc["digest"], f"layer {desc['digest']} is corrupt"
            assert len(blob.content) == desc["size"]
            assert desc["mediaType"].endswith("gzip"), desc["mediaType"]
            assert sha256(gzip.decompress(blob.content)) == diff_id, "a layer's content changed"

    if exact:
        assert digest == src.manifest_digest
        assert tuple(d["digest"] for d in layers) == src.layer_digests
    return manifest


def check_local_image(
    local: LocalImage | None, src: SourceImage, *, manifest_digest: str | None, who: str
) -> LocalImage:
    """A client's local image is the source image (and was pulled as `manifest_digest`)."""
    assert local is not None, f"{who}: the image is not in the local store"
    assert local.config_digest == src.config_digest, f"{who}: config {local.config_digest}"
    assert local.diff_ids == src.diff_ids, f"{who}: layers {local.diff_ids}"
    assert (local.os, local.architecture) == ("linux", "amd64"), who
    if manifest_digest is not None:
        assert local.manifest_digest == manifest_digest, f"{who}: pulled {local.manifest_digest}"
    return local


@contextmanager
def registry_log_on_failure(registry: RunningServer) -> Iterator[None]:
    """Append the tail of the registry's log to an assertion (or client) failure."""
    try:
        yield
    except AssertionError as e:
        if registry.log_path is None:
            raise
        raise AssertionError(
            f"{e}\n--- registry log, last lines\n{log_tail(registry.log_path)}"
        ) from e
