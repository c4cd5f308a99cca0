"""The secret scanner on secrets planted at test time: real keys made with `cryptography`, each
token kind, look-alikes that must not be reported, redaction, ELF sections, and rule files."""

from __future__ import annotations

import itertools
import random
import string
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from seawall.scan.elf import searchable_ranges
from seawall.scan.secrets import (
    BUILTIN_RULES,
    RuleFileError,
    SecretScanner,
    SecretSeverity,
    load_rule_file,
    load_rules,
    redact,
)
from tests.support.fuzz import FUZZ

ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
# Secrets are built here, never written in the source: a literal token would trip push scanning.
RNG = random.Random(7)


def chars(alphabet: str, n: int, rng: random.Random = RNG) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


Pem = serialization.Encoding.PEM
NoEnc = serialization.NoEncryption()


def rsa_pkcs1() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(Pem, serialization.PrivateFormat.TraditionalOpenSSL, NoEnc)


def token_samples() -> dict[str, str]:
    return {
        "aws-access-key-id": "AKIA" + chars(UPPER, 16),
        "github-token": "ghp_" + chars(ALNUM, 36),
        "github-fine-grained-pat": "github_pat_" + chars(ALNUM, 22) + "_" + chars(ALNUM, 59),
        "gitlab-pat": "glpat-" + chars(ALNUM + "_-", 20),
        "slack-token": "xoxb-" + chars("0123456789", 12) + "-" + chars(ALNUM, 24),
        "slack-webhook": "https://hooks.slack.com/services/T"
        + chars(UPPER, 8)
        + "/B"
        + chars(UPPER, 8)
        + "/"
        + chars(ALNUM, 24),
        "google-api-key": "AIza" + chars(ALNUM + "_-", 35),
    }


def scan(data: bytes, path: str = "app/config.env") -> list[tuple[str, int, str]]:
    return [(f.rule_id, f.line, f.redacted) for f in SecretScanner().scan(path, data)]


@pytest.mark.parametrize(
    ("key", "header"),
    [
        (rsa_pkcs1(), "-----BEGIN RSA PRIVATE KEY-----"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                Pem, serialization.PrivateFormat.TraditionalOpenSSL, NoEnc
            ),
            "-----BEGIN EC PRIVATE KEY-----",
        ),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                Pem, serialization.PrivateFormat.PKCS8, NoEnc
            ),
            "-----BEGIN PRIVATE KEY-----",
        ),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                Pem,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        ),
        (
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                Pem, serialization.PrivateFormat.OpenSSH, NoEnc
            ),
            "-----BEGIN OPENSSH PRIVATE KEY-----",
        ),
    ],
)
def test_private_keys_are_found_and_shown_by_header_only(key: bytes, header: str) -> None:
    data = b"line one\n" + key
    findings = scan(data, "root/.ssh/id")
    assert [(line, shown) for _, line, shown in findings] == [(2, header)]
    body = key.splitlines()[1].decode()
    assert body not in findings[0][2]


def test_legacy_encrypted_pem_with_headers() -> None:
    key = rsa_pkcs1().splitlines()
    legacy = [key[0], b"Proc-Type: 4,ENCRYPTED", b"DEK-Info: AES-128-CBC,0011", b"", *key[1:]]
    assert [f[0] for f in scan(b"\n".join(legacy))] == ["private-key"]


@pytest.mark.parametrize(
    "data",
    [
        b"-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",  # man page
        b"\0-----BEGIN PRIVATE KEY-----\0-----END PRIVATE KEY-----\0",  # a string table
        b"Keep the PRIVATE KEY----- safe; never commit a private key.\n",
        b"-----BEGIN CERTIFICATE-----\n" + b"MIIB" * 16 + b"\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PUBLIC KEY-----\n" + b"MFkw" * 16 + b"\n-----END PUBLIC KEY-----\n",
    ],
)
def test_private_key_look_alikes_are_not_reported(data: bytes) -> None:
    assert scan(data) == []


def test_public_keys_are_not_reported() -> None:
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    openssh = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    assert scan(public + openssh) == []


@pytest.mark.parametrize("rule_id", sorted(token_samples()))
def test_each_token_kind_is_found_and_redacted(rule_id: str) -> None:
    token = token_samples()[rule_id]
    data = f"# settings\nexport TOKEN='{token}'\n".encode()
    findings = scan(data)
    assert [(r, line) for r, line, _ in findings] == [(rule_id, 2)]
    shown = findings[0][2]
    assert token not in shown and token[4:] not in shown
    assert shown == f"{token[:4]}…({len(token)} chars)"


def test_aws_secret_access_key_needs_an_assignment() -> None:
    secret = chars(ALNUM + "/+", 40)
    assert scan(f"aws_secret_access_key = {secret}\n".encode())[0][0] == "aws-secret-access-key"
    assert scan(f'{{"SecretAccessKey": "{secret}"}}'.encode())[0][0] == "aws-secret-access-key"
    assert scan(f"AWS_SECRET_ACCESS_KEY={secret}\n".encode())[0][0] == "aws-secret-access-key"
    # A bare 40-character base64 string is everywhere (hashes, blobs) and is not reported.
    assert scan(f"checksum = {secret}\n".encode()) == []
    assert scan(b"aws_secret_access_key = " + b"x" * 40 + b"\n") == []  # a placeholder


def test_aws_documentation_examples_are_not_reported() -> None:
    docs = (
        b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        b"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    assert scan(docs) == []


@pytest.mark.parametrize(
    "data",
    [
        ("random base64 " + chars(ALNUM + "+/", 200)).encode(),
        b"AKIA" + b"lowercase_is_not_a_key_id",
        b"XAKIA" + chars(UPPER, 16).encode(),  # part of a longer word
        b"ghp_tooshort",
        b"xoxb-not-a-token",
    ],
)
def test_look_alike_tokens_are_not_reported(data: bytes) -> None:
    assert scan(data) == []


def test_compressed_files_and_allowed_paths_are_skipped() -> None:
    token = token_samples()["github-token"].encode()
    assert scan(b"\x1f\x8b\x08" + token) == []
    assert scan(token, "usr/lib/python3/site-packages/x/tests/fixture.txt") == []
    assert scan(token, "usr/share/doc/pkg/README") == []
    assert SecretScanner(allow_paths=()).scan("usr/share/doc/pkg/README", token)


def test_findings_are_capped_per_file() -> None:
    data = "\n".join(token_samples()["github-token"] for _ in range(50)).encode()
    findings = scan(data)
    assert len(findings) == 20
    assert [f[1] for f in findings] == list(range(1, 21))


def elf(sections: list[tuple[bytes, int, int, bytes]]) -> bytes:
    """A minimal little-endian ELF64 file: (name, type, flags, content) per section."""
    names = b"\0" + b"".join(name + b"\0" for name, *_ in sections) + b".shstrtab\0"
    body = bytearray(b"\x7fELF\x02\x01\x01" + bytes(57))
    headers = [bytes(64)]
    name_at = 1
    for name, kind, flags, content in [*sections, (b".shstrtab", 3, 0, names)]:
        offset = len(body)
        body += content
        headers.append(
            struct.pack("<IIQQQQIIQQ", name_at, kind, flags, 0, offset, len(content), 0, 0, 1, 0)
        )
        name_at += len(name) + 1
    shoff = len(body)
    body += b"".join(headers)
    struct.pack_into("<Q", body, 0x28, shoff)
    struct.pack_into("<HHH", body, 0x3A, 64, len(headers), len(headers) - 1)
    return bytes(body)


def test_elf_code_sections_are_skipped_and_string_sections_searched() -> None:
    token = token_samples()["gitlab-pat"].encode()
    in_code = elf([(b".text", 1, 0x6, b"\x90" + token), (b".eh_frame", 1, 0x2, token)])
    in_rodata = elf([(b".text", 1, 0x6, b"\x90" * 64), (b".rodata", 1, 0x2, b"\0" + token)])
    appended = elf([(b".text", 1, 0x6, b"\x90" * 64)]) + token
    assert scan(in_code, "usr/bin/x") == []
    assert [f[0] for f in scan(in_rodata, "usr/bin/x")] == ["gitlab-pat"]
    assert [f[0] for f in scan(appended, "usr/bin/x")] == ["gitlab-pat"]
    assert len(searchable_ranges(in_code)) == 2  # the ELF header, then the section tables


def test_malformed_elf_is_searched_whole() -> None:
    token = token_samples()["gitlab-pat"].encode()
    data = b"\x7fELF\x09" + bytes(80) + token
    assert searchable_ranges(data) == [(0, len(data))]
    assert [f[0] for f in scan(data)] == ["gitlab-pat"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_rule_file_adds_rules_and_allowed_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[rule]]
id = "acme-key"
description = "ACME API key"
severity = "medium"
regex = 'acme_(?P<secret>[0-9a-f]{32})'
keywords = ["acme_"]

[allow]
paths = ["srv/fixtures/*"]
""",
    )
    rules, allowed = load_rules([path])
    assert {r.id for r in rules} == {r.id for r in BUILTIN_RULES} | {"acme-key"}
    scanner = SecretScanner(rules, allowed)
    data = ("key: acme_" + chars("0123456789abcdef", 32)).encode()
    [finding] = scanner.scan("srv/app.yaml", data)
    assert (finding.rule_id, finding.severity) == ("acme-key", SecretSeverity.MEDIUM)
    assert scanner.scan("srv/fixtures/a.yaml", data) == []
    assert scanner.fingerprint != SecretScanner().fingerprint


def test_rule_file_rule_replaces_builtin_with_same_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[rule]]
id = "google-api-key"
description = "Google API key, strict"
regex = 'AIzaStrict[0-9]{4}'
keywords = ["AIzaStrict"]
""",
    )
    rules, _ = load_rules([path])
    assert len(rules) == len(BUILTIN_RULES)
    scanner = SecretScanner(rules)
    assert scanner.scan("a", token_samples()["google-api-key"].encode()) == []
    assert [f.rule_id for f in scanner.scan("a", b"AIzaStrict1234")] == ["google-api-key"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nid="x"\ndescription="d"\nregex="("\nkeywords=["a"]', "'x': bad regex"),
        ('[[rule]]\nid="x"\ndescription="d"\nregex="a"', "'x': keywords"),
        ('[[rule]]\nid="x"\ndescription="d"\nregex="a"\nkeywords=[]', "'x': keywords"),
        ('[[rule]]\nid="x"\ndescription="d"\nregex="a"\nkeywords=["a"]\nseverity="dire"', "'x'"),
        ('[[rule]]\nid="x"\ndescription="d"\nregex="a"\nkeywords=["a"]\nkeyword="b"', "unknown"),
        (
            '[[rule]]\nid="x"\ndescription="d"\nregex="a"\nkeywords=["a"]\n' * 2,
            "'x' is defined twice",
        ),
        ("[allow]\npaths = 'a'", "[allow] paths"),
        ("[[rule]\n", "cannot read"),
    ],
)
def test_bad_rule_files_name_the_file_and_rule(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RuleFileError) as caught:
        load_rule_file(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_fingerprint_is_stable_and_follows_the_rules() -> None:
    assert SecretScanner().fingerprint == SecretScanner().fingerprint
    assert SecretScanner(BUILTIN_RULES[1:]).fingerprint != SecretScanner().fingerprint
    assert SecretScanner(allow_paths=()).fingerprint != SecretScanner().fingerprint


@FUZZ
@given(
    kind=st.sampled_from(sorted(token_samples())),
    seed=st.integers(0, 2**32),
    before=st.binary(max_size=64),
    after=st.binary(max_size=64),
)
def test_redacted_text_never_contains_the_secret(
    kind: str, seed: int, before: bytes, after: bytes
) -> None:
    rng = random.Random(seed)
    token = token_samples()[kind]
    # Re-randomize the token body so every example plants a different secret.
    token = token[:12] + "".join(rng.choice(ALNUM) if c in ALNUM else c for c in token[12:])
    for finding in SecretScanner().scan("f", before + b"\n" + token.encode() + b"\n" + after):
        assert token not in finding.redacted
        assert token[4:] not in finding.redacted
        assert len(finding.redacted) < 40


def test_redact_shows_prefix_and_length_only() -> None:
    assert redact(b"supersecretvalue") == "supe…(16 chars)"


def test_a_file_full_of_keywords_still_finds_the_secret() -> None:
    token = token_samples()["aws-access-key-id"].encode()
    data = b"AKIA " * 300_000 + b"\n" + token  # past YARA's per-string match limit
    assert [f[0] for f in scan(data)] == ["aws-access-key-id"]


def test_no_rules_no_findings() -> None:
    assert SecretScanner(rules=()).scan("a", token_samples()["gitlab-pat"].encode()) == []


@FUZZ
@given(st.binary(max_size=512), st.sampled_from([b"", b"\x7fELF\x01\x01", b"\x7fELF\x02\x02"]))
def test_any_bytes_scan_without_error_and_ranges_stay_in_bounds(tail: bytes, head: bytes) -> None:
    data = head + tail
    ranges = searchable_ranges(data)
    assert all(0 <= start < end <= len(data) for start, end in ranges) or data == b""
    assert ranges == sorted(ranges)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    SecretScanner().scan("f", data)
