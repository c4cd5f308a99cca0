"""Drive skopeo against the test registry: plain HTTP, no signature policy, and the
credentials in an auth file (`--authfile`), never on the command line."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import auth_file, shown
from tests.support.server import RunningServer

TIMEOUT = 120


class SkopeoError(AssertionError):
    pass


@dataclass
class Skopeo:
    """skopeo bound to one registry, with the credentials in `authfile` (see `logged_in`)."""

    path: str
    server: RunningServer
    # The containers-auth.json every command reads (--authfile): the server's admin for
    # ordinary tests; empty or wrong credentials for the denied cases.
    authfile: Path

    @classmethod
    def logged_in(cls, path: str, server: RunningServer, tmp: Path) -> Skopeo:
        """skopeo as the server's admin; the auth file is written under `tmp`."""
        creds = {server.host: (server.username, server.password)}
        return cls(path, server, auth_file(tmp / "skopeo-auth.json", creds))

    def ref(self, repo: str, tag_or_digest: str) -> str:
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"docker://{self.server.host}/{repo}{sep}{tag_or_digest}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = [self.path, "--insecure-policy", "--command-timeout", f"{TIMEOUT}s", *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT + 10, check=False)
        if check and proc.returncode != 0:
            raise SkopeoError(self.describe(proc))
        return proc

    def describe(self, proc: subprocess.CompletedProcess[bytes]) -> str:
        msg = (
            f"{shown(list(map(str, proc.args)))} exited with {proc.returncode}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')}"
        )
        log = self.server.log()
        if log:
            msg += "\nserver log (tail):\n" + log[-4000:]
        return msg

    def push(
        self,
        layout: Path,
        tag: str,
        repo: str,
        dest: str | None = None,
        all_: bool = False,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Copy oci:LAYOUT:TAG to the registry as REPO:DEST (DEST defaults to TAG)."""
        return self.run(
            "copy",
            *self._auth(),
            *(["--all"] if all_ else []),
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            self.ref(repo, dest or tag),
            check=check,
        )

    def pull(
        self,
        repo: str,
        tag_or_digest: str,
        out: Path,
        out_tag: str = "pulled",
        all_: bool = False,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Copy REPO:TAG (or REPO@DIGEST) from the registry into the OCI layout oci:OUT:OUT_TAG."""
        return self.run(
            "copy",
            *self._auth(),
            *(["--all", "--preserve-digests"] if all_ else []),
            "--src-tls-verify=false",
            self.ref(repo, tag_or_digest),
            f"oci:{out}:{out_tag}",
            check=check,
        )

    def inspect_raw(self, repo: str, tag_or_digest: str) -> bytes:
        return self.run(
            "inspect", *self._auth(), "--raw", "--tls-verify=false", self.ref(repo, tag_or_digest)
        ).stdout

    def list_tags(self, repo: str) -> list[str]:
        out = self.run(
            "list-tags", *self._auth(), "--tls-verify=false", f"docker://{self.server.host}/{repo}"
        )
        tags: list[str] = json.loads(out.stdout)["Tags"]
        return tags

    def delete(self, repo: str, digest: str) -> subprocess.CompletedProcess[bytes]:
        return self.run("delete", *self._auth(), "--tls-verify=false", self.ref(repo, digest))

    def _auth(self) -> list[str]:
        return ["--authfile", str(self.authfile)]
