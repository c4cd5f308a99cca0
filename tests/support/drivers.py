"""Real registry clients driven alike for the tests that check what a client shows its user
(tests/e2e/test_lifecycle_clients.py): push an OCI layout's image, push a tag's image again
with the digest it has, pull (a platform of) an image; each call returns what the client did
(`Said`: its exit status and all it printed) instead of raising, since refusals are the point.

skopeo runs per test with an auth file; docker, podman and ctr wrap the session's clients
(tests/support/clients.py), already trusting the registry and logged in to it.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

from tests.support.clients import CtrClient, DockerClient, PodmanClient, SourceImage
from tests.support.processes import text_of
from tests.support.server import RunningServer, require_tool
from tests.support.skopeo import Skopeo


class Said:
    """A client command's exit status and what it printed (standard output, then error)."""

    def __init__(self, proc: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]):
        self.code = proc.returncode
        self.text = text_of(proc.stdout) + text_of(proc.stderr)
        # skopeo reports through logrus, which escapes quotes inside msg="...".
        self.shown = self.text.replace('\\"', '"')

    def __repr__(self) -> str:
        return f"exit status {self.code}, output:\n{self.text}"


class Driver:
    """One real client, pushing and pulling as a user would (logged in as the admin)."""

    name = ""

    def push(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        """Push the layout's image as `ref` (host/repository:tag): what the client said and
        the digest of the manifest it pushed (None if it failed)."""
        raise NotImplementedError

    def repush(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        """Push `ref` again with the manifest digest the registry holds for it."""
        raise NotImplementedError

    def pull(self, ref: str, arch: str | None = None) -> Said:
        raise NotImplementedError


class SkopeoDriver(Driver):
    name = "skopeo"

    def __init__(self, server: RunningServer, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tool = Skopeo.logged_in(require_tool("skopeo"), server, tmp)
        self.tmp = tmp

    def copy(self, *args: str) -> Said:
        return Said(
            self.tool.run("copy", "--authfile", str(self.tool.authfile), *args, check=False)
        )

    def push(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        return self.push_layout(src.layout, src.tag, ref)

    def push_layout(
        self, layout: Path, tag: str, ref: str, all_: bool = False
    ) -> tuple[Said, str | None]:
        """Copy oci:LAYOUT:TAG to `ref` byte for byte (an index with every image, `all_`)."""
        digest_file = self.tmp / f"digest-{secrets.token_hex(4)}"
        said = self.copy(
            *(["--all"] if all_ else []),
            "--preserve-digests",
            "--digestfile",
            str(digest_file),
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            f"docker://{ref}",
        )
        return said, digest_file.read_text().strip() if said.code == 0 else None

    def repush(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        return self.push(src, ref)  # --preserve-digests: the very manifest again

    def pull(self, ref: str, arch: str | None = None) -> Said:
        platform = ["--override-os", "linux", "--override-arch", arch] if arch else []
        out = self.tmp / f"pulled-{secrets.token_hex(4)}"
        return self.copy(*platform, "--src-tls-verify=false", f"docker://{ref}", f"oci:{out}:x")

    def delete(self, ref: str) -> Said:
        auth = ["--authfile", str(self.tool.authfile)]
        return Said(self.tool.run("delete", *auth, "--tls-verify=false", ref, check=False))


class DockerDriver(Driver):
    name = "docker"

    def __init__(self, tool: DockerClient) -> None:
        self.tool = tool

    def push(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        self.tool.load(src, ref)
        return self._push(ref)

    def _push(self, ref: str) -> tuple[Said, str | None]:
        said = Said(self.tool.docker("push", ref, check=False))
        found = re.search(r"digest: (sha256:[0-9a-f]{64}) size: \d+", said.text)
        return said, found.group(1) if said.code == 0 and found else None

    def repush(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        pulled = self.pull(ref)
        assert pulled.code == 0, pulled
        return self._push(ref)

    def pull(self, ref: str, arch: str | None = None) -> Said:
        platform = ["--platform", f"linux/{arch}"] if arch else []
        return Said(self.tool.docker("pull", *platform, ref, check=False))


class PodmanDriver(Driver):
    name = "podman"

    def __init__(self, tool: PodmanClient) -> None:
        self.tool = tool

    def push(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        self.tool.load(src, ref)
        return self._push(ref)

    def _push(self, ref: str) -> tuple[Said, str | None]:
        digest_file = self.tool.tmp / f"digest-{secrets.token_hex(4)}"
        push = ["push", "--tls-verify=false", "--digestfile", str(digest_file), ref]
        said = Said(self.tool.podman(*push, check=False))
        return said, digest_file.read_text().strip() if said.code == 0 else None

    def repush(self, src: SourceImage, ref: str) -> tuple[Said, str | None]:
        pulled = self.pull(ref)
        assert pulled.code == 0, pulled
        return self._push(ref)

    def pull(self, ref: str, arch: str | None = None) -> Said:
        platform = ["--platform", f"linux/{arch}"] if arch else []
        return Said(self.tool.podman("pull", "--tls-verify=false", *platform, ref, check=False))


class CtrDriver(Driver):
    name = "ctr"

    def __init__(self, tool: CtrClient, server: RunningServer) -> None:
        self.tool = tool
        self.user = ["--user", server.creds]

    def pull(self, ref: str, arch: str | None = None, *, debug: bool = False) -> Said:
        platform = ["--platform", f"linux/{arch}"] if arch else []
        argv = ["images", "pull", "--plain-http", *self.user, *platform, ref]
        return Said(self.tool.ctr(*(["--debug"] if debug else []), *argv, check=False))
