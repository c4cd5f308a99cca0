"""The run's test data: random blob files written once and reused against every server.

Each large blob is a 64 MiB random buffer rotated by a different offset behind a unique random
header, so every file has its own digest while only one buffer is drawn from the kernel's CSPRNG
(no registry compresses or deduplicates below the blob level, so this is as good as fresh data).
The 2 GiB blob is never a file of its own: it is the concatenation of all the upload blobs,
streamed part after part.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Blob:
    path: Path
    size: int
    digest: str

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass(frozen=True)
class Image:
    """A tiny, valid image: config and layer blobs and the manifest that names them."""

    config: bytes
    layer: bytes
    manifest: bytes

    @property
    def blobs(self) -> list[tuple[str, bytes]]:
        return [(sha256(self.config), self.config), (sha256(self.layer), self.layer)]


@dataclass(frozen=True)
class Dataset:
    mono: list[Blob]  # monolithic upload blobs, also the blob GET set and nginx's files
    chunked: list[Blob]  # chunked upload blobs
    big_digest: str  # all mono then all chunked blobs, concatenated
    big_size: int
    image: Image

    @property
    def big_parts(self) -> list[Blob]:
        return self.mono + self.chunked


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_dataset(directory: Path, count: int, size: int) -> Dataset:
    directory.mkdir(parents=True, exist_ok=True)
    base = memoryview(os.urandom(size))
    big = hashlib.sha256()
    blobs: list[Blob] = []
    step = max(4096, size // (2 * count + 1))
    # The 2 GiB digest runs in a thread of its own, in order (hashlib releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as big_hasher:
        for i in range(2 * count):
            header = f"seawall-bench blob {i} {secrets.token_hex(8)}\n".encode()
            offset = (i * step + 1) % size
            body = size - len(header)
            pieces: list[bytes | memoryview] = [header, base[offset : offset + body]]
            if offset + body > size:
                pieces.append(base[: offset + body - size])
            digest = hashlib.sha256()
            path = directory / f"blob-{i:02d}"
            with open(path, "wb") as f:
                for piece in pieces:
                    big_hasher.submit(big.update, piece)
                    f.write(piece)
                    digest.update(piece)
            path.chmod(0o644)
            blobs.append(Blob(path, size, "sha256:" + digest.hexdigest()))
    return Dataset(
        mono=blobs[:count],
        chunked=blobs[count:],
        big_digest="sha256:" + big.hexdigest(),
        big_size=2 * count * size,
        image=make_image(),
    )


def image_only() -> Dataset:
    """The small image and no blobs: for runs that leave out the registry comparison."""
    return Dataset(mono=[], chunked=[], big_digest="", big_size=0, image=make_image())


def make_image() -> Image:
    content = b"hello from the seawall benchmark\n"
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = tar_buf.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes)]},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        },
        separators=(",", ":"),
    ).encode()
    return Image(config=config, layer=layer, manifest=manifest)
