"""An image's final file view: layers applied in order (index 0 = base) with OCI whiteouts, plus
the files later layers deleted (their bytes still ship, so secrets in them still count)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from seawall.scan.layers import (
    MAX_SYMLINK_HOPS,
    ContentSink,
    EntryKind,
    LayerEntry,
    LayerNote,
    Limits,
    SkippedEntry,
    Wanted,
    Whiteout,
    normalize_name,
    parent_path,
    read_layer,
    want_nothing,
)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One path of the image's final view, and the layer it comes from."""

    path: str
    layer_index: int
    size: int
    mode: int
    kind: EntryKind
    link_target: str | None = None
    link_escapes: bool = False
    oversized: bool = False


@dataclass(frozen=True, slots=True)
class RemovedFile:
    """A non-directory a layer added and a later layer deleted; its bytes still ship."""

    path: str
    layer_index: int
    removed_by: int


@dataclass(frozen=True, slots=True)
class LayerSkip:
    layer_index: int
    name: str
    reason: str


@dataclass
class _LayerChanges:
    entries: dict[str, LayerEntry] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)


class ImageFiles:
    """An image's final file view, built by applying layers in order (index 0 = base).

    Whiteouts and opaque markers apply only to lower layers, as the OCI image spec says. A path
    that stops existing is listed in `removed`; a file overwritten at the same path is not (its
    bytes reached the content sink when its layer was read, if wanted).
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.files: dict[str, FileInfo] = {}
        self.removed: list[RemovedFile] = []
        self.skipped: list[LayerSkip] = []
        self.notes: list[tuple[int, str]] = []  # (layer index, what was unusual about it)
        self.layer_count = 0
        # Every known name (entries and their implied parents) by parent, for subtree deletes.
        self._children: dict[str, set[str]] = {}

    def add_layer(
        self, source: BinaryIO, wanted: Wanted = want_nothing, sink: ContentSink | None = None
    ) -> None:
        """Read the next layer once: wanted file bytes go to `sink(path, layer_index, data)` as
        they are read, then the layer's changes are applied. On `LayerRejected` the view is left
        as it was before this layer."""
        index = self.layer_count
        entries: list[LayerEntry] = []
        whiteouts: list[str] = []
        opaque: list[str] = []
        skipped: list[tuple[str, str]] = []
        notes: list[str] = []
        for item in read_layer(source, self.limits, wanted):
            if isinstance(item, SkippedEntry):
                skipped.append((item.name, item.reason))
            elif isinstance(item, LayerNote):
                notes.append(item.text)
            elif isinstance(item, Whiteout):
                (opaque if item.opaque else whiteouts).append(item.path)
            else:
                entries.append(item)
                if item.content is not None and sink is not None:
                    sink(item.path, index, item.content)
        self.add_changes(entries, whiteouts, opaque, skipped, notes)

    def add_changes(
        self,
        entries: Iterable[LayerEntry],
        whiteouts: Iterable[str],
        opaque: Iterable[str],
        skipped: Iterable[tuple[str, str]] = (),
        notes: Iterable[str] = (),
    ) -> None:
        """Apply the next layer from its changes as already read (e.g. from a cache): entries in
        tar order, whiteout and opaque paths, (tar name, reason) of skipped members, and notes
        on what was unusual about it."""
        index = self.layer_count
        changes = _LayerChanges()
        for entry in entries:
            changes.entries.pop(entry.path, None)  # keep tar order for the latest copy
            changes.entries[entry.path] = entry
        changes.whiteouts.extend(whiteouts)
        changes.opaque.extend(opaque)
        self._apply(index, changes)
        self.skipped.extend(LayerSkip(index, name, reason) for name, reason in skipped)
        self.notes.extend((index, text) for text in notes)
        self.layer_count += 1

    def _apply(self, index: int, changes: _LayerChanges) -> None:
        for path in changes.whiteouts:
            self._delete(path, index, keep_root=False)
        for path in changes.opaque:
            self._delete(path, index, keep_root=True)
        for path, entry in changes.entries.items():
            if entry.kind is not EntryKind.DIR:
                self._delete(path, index, keep_root=True)  # a non-directory hides what was below
            ancestor = parent_path(path)
            while ancestor:
                lower = self.files.get(ancestor)
                if lower is not None and lower.kind is not EntryKind.DIR:
                    self._delete(ancestor, index, keep_root=False)
                ancestor = parent_path(ancestor)
        for path, entry in changes.entries.items():
            self._put(
                FileInfo(
                    path,
                    index,
                    entry.size,
                    entry.mode,
                    entry.kind,
                    entry.link_target,
                    entry.link_escapes,
                    entry.oversized,
                )
            )

    def _put(self, info: FileInfo) -> None:
        self.files[info.path] = info
        path = info.path
        while path:
            parent = parent_path(path)
            siblings = self._children.setdefault(parent, set())
            if path in siblings:
                break
            siblings.add(path)
            path = parent

    def _delete(self, path: str, index: int, *, keep_root: bool) -> None:
        pending = list(self._children.pop(path, ()))
        if not keep_root:
            pending.append(path)
            self._children.get(parent_path(path), set()).discard(path)
        while pending:
            current = pending.pop()
            pending.extend(self._children.pop(current, ()))
            info = self.files.pop(current, None)
            if info is not None and info.kind is not EntryKind.DIR:
                self.removed.append(RemovedFile(current, info.layer_index, index))

    def resolve(self, path: str) -> FileInfo | None:
        """Follow symlinks and hard links by name inside the image, as a process in the container
        would (absolute targets start at the image root; ".." stops at the root). None when the
        path does not exist or more than 40 links are followed (a loop)."""
        start = normalize_name(path)
        if start is None:
            return None
        pending = deque(start.split("/"))
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            info = self.files.get(candidate)
            if info is not None and info.link_target is not None:
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = info.link_target
                if info.kind is EntryKind.HARDLINK or target.startswith("/"):
                    resolved = []  # hard link names are archive paths, from the root
                pending.extendleft(reversed(target.split("/")))
                continue
            resolved.append(part)
        return self.files.get("/".join(resolved))
