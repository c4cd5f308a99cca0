"""Maven version ordering, as a plain tuple that Python compares natively.

Maven orders versions with `ComparableVersion` (maven-artifact): a version is split into items at
".", "-" and at every change between digits and letters; numbers compare as numbers, qualifiers
by the list alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release < sp, then
unknown qualifiers alphabetically, all case-insensitive ("a1", "b1", "m1" are alpha-1, beta-1,
milestone-1). A "-" opens a sub-list, so "1-1" < "1.1"; a qualifier after "." that is followed by
digits or ends the version is taken as if after "-" ("1.0.0.RC1" = "1.0.0-RC1"). Trailing null
items (0, "", an empty sub-list) are dropped, also before a sub-list: "1.0" = "1" and
"1.0-1" = "1-1". When one list is shorter, its missing items compare as null: a number above 0 is
newer than null, a pre-release qualifier older, sp and unknown qualifiers newer.

Maven's own comparison is not a total order in a corner: null equals both 0 and "" while 0 > "",
and a sub-list before null ("1-alpha" < "1") is newer than an sp or unknown qualifier after
null ("1.sp.1" > "1"), yet Maven says "1-alpha" > "1.sp.1" (checked against Maven 3.8.7). A sort
key needs a total order, so here each item first falls on a side of null (older, null, newer) and
only items on the same side compare by kind: Maven's answer everywhere except such mixed
comparisons, where the answer given is the one consistent with the null padding. univers has a
port of ComparableVersion, but its equality and hash disagree ("1.0" == "1" hash apart) and it
keeps the cycle, so it cannot be a sort or dictionary key.

The key of a list is a tuple of runs: null items in a row, then one item that is not null, as
(side, ±run length, item key), and (1,) at the end standing for the null padding that follows
every version. A longer run of nulls before an older item is newer and before a newer item is
older, which the sign of the run length expresses; so tuple order is Maven's padded comparison.
"""

from __future__ import annotations

from typing import Any

# Longest version text parsed; longer ones are no version anybody ships.
MAX_MAVEN_VERSION = 256
MavenKey = tuple[Any, ...]

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RANK = {name: rank for rank, name in enumerate(_QUALIFIERS)}
_RELEASE = _RANK[""]
_UNKNOWN = len(_QUALIFIERS)
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}  # only when directly followed by digits
_OLDER, _NULL, _NEWER = 0, 1, 2
_END: MavenKey = (_NULL,)


def maven_key(text: str) -> MavenKey | None:
    """The sort key of a Maven version, or None when `text` is empty, too long or holds
    whitespace or control characters (Maven itself accepts any string)."""
    if not text or len(text) > MAX_MAVEN_VERSION or any(c.isspace() or ord(c) < 32 for c in text):
        return None
    return _list_key(_parse(text.lower()))


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"  # ASCII only, as Maven 4 does; "²" is not a number


def _qualifier(text: str, followed_by_digit: bool) -> str:
    if followed_by_digit and text in _SHORT:
        return _SHORT[text]
    return _ALIASES.get(text, text)


def _parse(version: str) -> list[Any]:
    """The item tree, normalized: innermost lists first, trailing nulls dropped."""
    root: list[Any] = []
    lists = [root]
    current = root
    start = 0
    digits = False

    def open_list() -> None:
        nonlocal current
        sub: list[Any] = []
        current.append(sub)
        lists.append(sub)
        current = sub

    for index, char in enumerate(version):
        if char in ".-":
            token = version[start:index]
            current.append(_item(token, digits) if token else 0)
            start = index + 1
            if char == "-":
                open_list()
        elif _is_digit(char):
            if not digits and index > start:
                # "1.0.RC1": a qualifier followed by digits goes in a sub-list, like "-RC1".
                if current:
                    open_list()
                current.append(_qualifier(version[start:index], followed_by_digit=True))
                start = index
                open_list()
            digits = True
        else:
            if digits and index > start:
                current.append(int(version[start:index]))
                start = index
                open_list()
            digits = False
    if start < len(version):
        if not digits and current:
            open_list()  # "1.foo" is "1-foo"
        current.append(_item(version[start:], digits))
    for items in reversed(lists):
        _normalize(items)
    return root


def _item(token: str, digits: bool) -> int | str:
    return int(token) if digits else _qualifier(token, followed_by_digit=False)


def _is_null(item: int | str | list[Any]) -> bool:
    return item in (0, "", [])


def _normalize(items: list[Any]) -> None:
    """Drop null items from the end, and those before trailing sub-lists ("1.0-1" = "1-1")."""
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if _is_null(item):
            del items[index]
        elif not isinstance(item, list):
            break


def _list_key(items: list[Any]) -> MavenKey:
    runs: list[MavenKey] = []
    nulls = 0
    for item in items:
        side, key = _item_key(item)
        if side == _NULL:
            nulls += 1
        elif side == _OLDER:
            runs.append((_OLDER, nulls, key))
            nulls = 0
        else:
            runs.append((_NEWER, -nulls, key))
            nulls = 0
    runs.append(_END)
    return tuple(runs)


def _item_key(item: Any) -> tuple[int, MavenKey]:
    """(side of null, key among the items on that side). On one side, qualifiers come before
    sub-lists and sub-lists before numbers, as in Maven."""
    if isinstance(item, int):
        return _NEWER, (2, item, "")
    if isinstance(item, str):
        rank = _RANK.get(item, _UNKNOWN)
        side = _OLDER if rank < _RELEASE else _NULL if rank == _RELEASE else _NEWER
        return side, (0, rank, item if rank == _UNKNOWN else "")
    key = _list_key(item)
    # A sub-list is on the side of its first item that is not null (Maven's MNG-6964).
    side = key[0][0]
    return side, (1, key)
