"""Find credentials in file bytes: private keys and cloud / SaaS tokens, by keyword-gated regexes.

Every file of every image passes through `SecretScanner.scan`, so the cost per byte is what
matters. A rule's regex runs only when one of its literal keywords occurs in the file, and all
keywords of all rules are found in one pass (YARA's Aho-Corasick automaton). In ELF files the
sections that cannot hold string data (machine code, relocations, symbol and hash tables, unwind
tables, debug info) are not searched: they are most of a binary's bytes and a secret there would
be a coincidence, not a leak. Compressed files (gzip, xz, zstd, bzip2, PNG, JPEG) are skipped
whole: their plaintext is not in their bytes. `docs/scanning-rules.md` describes the rules.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import math
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yara  # type: ignore[import-not-found]  # no type stubs ship with yara-python

from seawall.scan.elf import searchable_ranges

MAX_FINDINGS_PER_FILE = 20
# Entropy looks at no more than this much of a match.
MAX_SECRET_BYTES = 4096
# Shown in a finding: this many leading characters of the secret, then its length.
SHOWN_PREFIX = 4

# Third-party test fixtures and documentation ship sample keys that are public by construction.
DEFAULT_ALLOW_PATHS = (
    "usr/share/doc/*",
    "usr/share/man/*",
    "*/site-packages/*/tests/*",
    "*/site-packages/*/test/*",
    "*/dist-packages/*/tests/*",
    "*/dist-packages/*/test/*",
    "*/node_modules/*/tests/*",
    "*/node_modules/*/test/*",
)

_COMPRESSED_MAGIC = (
    b"\x1f\x8b\x08",  # gzip
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
)


class SecretSeverity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class RuleFileError(ValueError):
    """A rule file cannot be used; the message names the file and, where it applies, the rule."""


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One kind of secret.

    `regex` runs only on files containing one of `keywords`. If it has a group named `secret`,
    that group is the secret (what is redacted, entropy-checked and allow-listed); otherwise the
    whole match is. A group named `header` is shown verbatim instead of a redacted secret, for
    parts that are labels rather than secrets (a PEM BEGIN line).
    """

    id: str
    description: str
    severity: SecretSeverity
    regex: bytes
    keywords: tuple[bytes, ...]
    # Shannon entropy (bits per byte) the secret must reach; weeds out placeholders like XXXX.
    entropy_min: float = 0.0
    # A secret matching this (searched within the secret) is a known non-secret, e.g. docs.
    allow_regex: bytes | None = None
    compiled: re.Pattern[bytes] = field(init=False, repr=False, compare=False)
    compiled_allow: re.Pattern[bytes] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a rule needs an id")
        if not self.keywords or not all(kw and b"\0" not in kw for kw in self.keywords):
            raise ValueError(f"rule {self.id!r}: keywords: one or more, non-empty, without NUL")
        try:
            compiled = re.compile(self.regex)
            allow = re.compile(self.allow_regex) if self.allow_regex is not None else None
        except re.error as exc:
            raise ValueError(f"rule {self.id!r}: bad regex: {exc}") from exc
        object.__setattr__(self, "compiled", compiled)
        object.__setattr__(self, "compiled_allow", allow)


@dataclass(frozen=True, slots=True)
class SecretFinding:
    rule_id: str
    description: str
    severity: SecretSeverity
    line: int
    redacted: str


_C, _H = SecretSeverity.CRITICAL, SecretSeverity.HIGH
# Each regex starts with a literal (a boundary lookbehind comes after it, not before) so that re
# finds candidates with its fast literal-prefix loop instead of trying a match at every byte.
# A PEM key needs a body: a BEGIN line alone (a binary's string table, a man page with "...")
# is no key. Encrypted legacy PEM has `Proc-Type:`/`DEK-Info:` headers before the body.
_PEM_BODY = rb"[ \t]*\r?\n(?:[A-Za-z-]+:[^\r\n]{0,200}\r?\n){0,4}(?:\r?\n)?[A-Za-z0-9+/=]{40,}"
_AWS_EXAMPLE = rb"EXAMPLE(?:KEY)?$"

BUILTIN_RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private-key",
        "PEM private key (PKCS#1 RSA, EC, DSA, PKCS#8, encrypted PKCS#8)",
        _C,
        rb"(?P<header>-----BEGIN (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----)" + _PEM_BODY,
        (b"PRIVATE KEY-----",),
    ),
    SecretRule(
        "openssh-private-key",
        "OpenSSH private key",
        _C,
        rb"(?P<header>-----BEGIN OPENSSH PRIVATE KEY-----)" + _PEM_BODY,
        (b"OPENSSH PRIVATE KEY-----",),
    ),
    SecretRule(
        "aws-access-key-id",
        "AWS access key id (long-term AKIA or temporary ASIA)",
        _C,
        rb"(?P<secret>A(?<![A-Z0-9]A)(?:KIA|SIA)[A-Z0-9]{16})(?![A-Z0-9])",
        (b"AKIA", b"ASIA"),
        allow_regex=_AWS_EXAMPLE,
    ),
    SecretRule(
        "aws-secret-access-key",
        "AWS secret access key assigned to an aws_secret_access_key-like name",
        _C,
        rb"(?i:secret_?access_?key|secret-access-key)[\"']?\s{0,20}(?::|=>|=)\s{0,20}[\"']?"
        rb"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        (b"ecret_access_key", b"ECRET_ACCESS_KEY", b"ecretAccessKey", b"ecret-access-key"),
        entropy_min=4.0,
        allow_regex=_AWS_EXAMPLE,
    ),
    SecretRule(
        "github-token",
        "GitHub token (personal, OAuth, user-to-server, server-to-server, refresh)",
        _C,
        rb"(?P<secret>gh(?<![A-Za-z0-9_]gh)[pousr]_[A-Za-z0-9]{36})(?![A-Za-z0-9])",
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"),
    ),
    SecretRule(
        "github-fine-grained-pat",
        "GitHub fine-grained personal access token",
        _C,
        rb"(?P<secret>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9])",
        (b"github_pat_",),
    ),
    SecretRule(
        "gitlab-pat",
        "GitLab personal access token",
        _C,
        rb"(?P<secret>glpat-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])",
        (b"glpat-",),
    ),
    SecretRule(
        "slack-token",
        "Slack bot, user, app, refresh or session token",
        _H,
        rb"(?P<secret>xox[baprs]-(?:[0-9]{6,15}-){1,3}[A-Za-z0-9-]{10,64})",
        (b"xox",),
    ),
    SecretRule(
        "slack-webhook",
        "Slack incoming webhook URL",
        _H,
        rb"(?P<secret>https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/_-]{40,200})",
        (b"hooks.slack.com/",),
    ),
    SecretRule(
        "google-api-key",
        "Google API key",
        _H,
        rb"(?P<secret>AIza(?<![A-Za-z0-9_-]AIza)[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])",
        (b"AIza",),
    ),
)


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte."""
    if not data:
        return 0.0
    total = len(data)
    return -sum(n / total * math.log2(n / total) for n in Counter(data).values())


def redact(secret: bytes) -> str:
    """A secret as a finding shows it: a few leading characters and the length, never more."""
    shown = secret[:SHOWN_PREFIX].decode("ascii", errors="replace")
    return f"{shown}…({len(secret)} chars)"


def load_rule_file(path: Path) -> tuple[list[SecretRule], list[str]]:
    """The rules and allowed path globs of an operator's TOML rule file (see the docs)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read rule file: {exc}") from exc
    rules: list[SecretRule] = []
    seen: set[str] = set()
    for index, item in enumerate(raw.get("rule", [])):
        rule = _rule_from_toml(path, index, item)
        if rule.id in seen:
            raise RuleFileError(f"{path}: rule {rule.id!r} is defined twice")
        seen.add(rule.id)
        rules.append(rule)
    allow = raw.get("allow", {})
    paths = allow.get("paths", []) if isinstance(allow, dict) else None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise RuleFileError(f"{path}: [allow] paths must be a list of glob strings")
    return rules, paths


def _rule_from_toml(path: Path, index: int, item: Any) -> SecretRule:
    name = item.get("id", f"#{index + 1}") if isinstance(item, dict) else f"#{index + 1}"
    where = f"{path}: rule {name!r}"
    if not isinstance(item, dict):
        raise RuleFileError(f"{where}: must be a table")
    unknown = set(item) - {"id", "description", "severity", "regex", "keywords", "entropy_min"}
    if unknown:
        raise RuleFileError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("id", "description", "regex"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise RuleFileError(f"{where}: {key} must be a non-empty string")
    keywords = item.get("keywords")
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise RuleFileError(f"{where}: keywords must be a list of strings")
    if item.get("severity", "high") not in tuple(SecretSeverity):
        raise RuleFileError(f"{where}: severity must be one of {[str(s) for s in SecretSeverity]}")
    if not isinstance(item.get("entropy_min", 0.0), int | float):
        raise RuleFileError(f"{where}: entropy_min must be a number")
    severity = SecretSeverity(item.get("severity", "high"))
    regex, entropy_min = item["regex"].encode(), float(item.get("entropy_min", 0.0))
    encoded = tuple(k.encode() for k in keywords)
    try:
        return SecretRule(item["id"], item["description"], severity, regex, encoded, entropy_min)
    except ValueError as exc:  # the message names the rule
        raise RuleFileError(f"{path}: {exc}") from exc


def load_rules(rule_files: Iterable[Path] = ()) -> tuple[list[SecretRule], list[str]]:
    """The built-in rules with each file's rules added (a built-in's id replaces it), and the
    allowed path globs: the defaults plus every file's."""
    by_id = {rule.id: rule for rule in BUILTIN_RULES}
    paths = list(DEFAULT_ALLOW_PATHS)
    for rule_file in rule_files:
        rules, allowed = load_rule_file(rule_file)
        by_id.update((rule.id, rule) for rule in rules)
        paths.extend(allowed)
    return list(by_id.values()), paths


class SecretScanner:
    """Scans one file's bytes against a fixed rule set; build once, call `scan` per file."""

    def __init__(
        self,
        rules: Sequence[SecretRule] = BUILTIN_RULES,
        allow_paths: Sequence[str] = DEFAULT_ALLOW_PATHS,
    ) -> None:
        ids = [rule.id for rule in rules]
        if len(set(ids)) != len(ids):
            raise ValueError("rule ids must be unique")
        self.rules = tuple(rules)
        self.allow_paths = tuple(allow_paths)
        self._allow_path = (
            re.compile("|".join(fnmatch.translate(glob) for glob in self.allow_paths))
            if self.allow_paths
            else None
        )
        # All keywords are found in one pass by YARA's Aho-Corasick automaton: a bytes.find per
        # keyword costs a pass over the file each (1-3 GB/s apiece, so ~100 MB/s for the built-in
        # rules); the automaton costs about as much as two such passes however many there are.
        self._keywords = sorted({kw for rule in self.rules for kw in rule.keywords})
        # Compiled at the first scan: the automaton takes ~7 MB, which a server process whose
        # layers are read by child processes never needs (it only asks for the fingerprint).
        self._keyword_rules: yara.Rules | None = None

    def _keyword_automaton(self) -> yara.Rules | None:
        if self._keyword_rules is None and self._keywords:
            strings = " ".join(
                f"$k{i} = {{ {kw.hex(' ')} }}" for i, kw in enumerate(self._keywords)
            )
            self._keyword_rules = yara.compile(
                source=f"rule keywords {{ strings: {strings} condition: any of them }}"
            )
        return self._keyword_rules

    @property
    def fingerprint(self) -> str:
        """sha256 over everything that decides findings: cached results are valid while it holds."""
        digest = hashlib.sha256(b"seawall-secrets-v1\0")
        for rule in sorted(self.rules, key=lambda r: r.id):
            fields = (rule.id, rule.description, rule.severity, rule.entropy_min)
            digest.update(repr(fields).encode() + b"\0")
            digest.update(rule.regex + b"\0" + (rule.allow_regex or b"") + b"\0")
            digest.update(b"\1".join(rule.keywords) + b"\0")
        digest.update("\0".join(self.allow_paths).encode())
        return digest.hexdigest()

    def scan(self, path: str, data: bytes) -> list[SecretFinding]:
        keyword_rules = self._keyword_automaton()
        if keyword_rules is None:
            return []
        if self._allow_path is not None and self._allow_path.match(path):
            return []
        if data.startswith(_COMPRESSED_MAGIC) or _is_bzip2(data):
            return []
        ranges = searchable_ranges(data)
        present = self._keywords_in(keyword_rules, data, ranges)
        if not present:
            return []
        found: list[tuple[int, SecretFinding]] = []
        for rule in self.rules:
            if present.isdisjoint(rule.keywords):
                continue
            for start, end in ranges:
                found.extend(_matches(rule, data, start, end))
        found.sort(key=lambda item: item[0])
        return _with_lines(data, found[:MAX_FINDINGS_PER_FILE])

    def _keywords_in(
        self, keyword_rules: yara.Rules, data: bytes, ranges: list[tuple[int, int]]
    ) -> set[bytes]:
        # One YARA call over the searchable ranges joined by NUL, which no keyword contains, so
        # no keyword can straddle two ranges.
        if len(ranges) == 1 and ranges[0] == (0, len(data)):
            view = data
        else:
            view = b"\0".join(data[start:end] for start, end in ranges)
        matches = keyword_rules.match(data=view, fast=True, warnings_callback=_ignore_warning)
        return {
            self._keywords[int(string.identifier[2:])]
            for match in matches
            for string in match.strings
        }


def _ignore_warning(kind: int, detail: object) -> int:
    # "Too many matches" of a keyword (a file full of `xox`) is expected: presence is all we ask.
    return int(yara.CALLBACK_CONTINUE)


def _matches(
    rule: SecretRule, data: bytes, start: int, end: int
) -> Iterable[tuple[int, SecretFinding]]:
    count = 0
    for match in rule.compiled.finditer(data, start, end):
        secret = match.group("secret" if "secret" in match.re.groupindex else 0)
        if rule.entropy_min and entropy(secret[:MAX_SECRET_BYTES]) < rule.entropy_min:
            continue
        if rule.compiled_allow is not None and rule.compiled_allow.search(secret):
            continue
        if "header" in match.re.groupindex and match.group("header") is not None:
            shown = match.group("header").decode("ascii", errors="replace")
        else:
            shown = redact(secret)
        # The line is filled in later, once the findings of all rules are in file order.
        yield match.start(), SecretFinding(rule.id, rule.description, rule.severity, 0, shown)
        count += 1
        if count >= MAX_FINDINGS_PER_FILE:
            return


def _with_lines(data: bytes, found: list[tuple[int, SecretFinding]]) -> list[SecretFinding]:
    out: list[SecretFinding] = []
    line, pos = 1, 0
    for offset, finding in found:
        line += data.count(b"\n", pos, offset)
        pos = offset
        out.append(dataclasses.replace(finding, line=line))
    return out


def _is_bzip2(data: bytes) -> bool:
    return data.startswith(b"BZh") and data[4:10] == b"1AY&SY"
