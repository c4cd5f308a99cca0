"""Drive skopeo against the test registry: plain HTTP, anonymous, no signature policy."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import RunningServer

TIMEOUT = 120


class SkopeoError(AssertionError):
    pass


@dataclass
class Skopeo:
    path: str
    server: RunningServer

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
            f"{' '.join(map(str, proc.args))} exited with {proc.returncode}\n"
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
            *(["--all", "--preserve-digests"] if all_ else []),
            "--src-tls-verify=false",
            self.ref(repo, tag_or_digest),
            f"oci:{out}:{out_tag}",
            check=check,
        )

    def inspect_raw(self, repo: str, tag_or_digest: str) -> bytes:
        return self.run(
            "inspect", "--raw", "--tls-verify=false", self.ref(repo, tag_or_digest)
        ).stdout

    def list_tags(self, repo: str) -> list[str]:
        out = self.run("list-tags", "--tls-verify=false", f"docker://{self.server.host}/{repo}")
        tags: list[str] = json.loads(out.stdout)["Tags"]
        return tags

    def delete(self, repo: str, digest: str) -> subprocess.CompletedProcess[bytes]:
        return self.run("delete", "--tls-verify=false", self.ref(repo, digest))
