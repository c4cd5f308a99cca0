"""Synthetic OSV data in OSV's bucket layout (`<root>/<ECOSYSTEM>/all.zip`), and stored
inventories that use part of it, for the vulnerability-data memory tests and
`bench/vulndb_memory.py`.

The records are shaped like the real ones of each database: Debian's and Ubuntu's per-CVE
records name every release they cover (`Debian:11`, `Debian:12`, `Debian:13`;
`Ubuntu:22.04:LTS`, ...), many with no fix yet (an `introduced` event alone) and an urgency or
Ubuntu rating; language records carry a CVSS vector and a fix. Deterministic for a seed, and
streamed into the zips (a record at a time), so 300,000 cost no more memory than 3,000.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seawall.db.scans import ReportRow
from seawall.domain.severity import SEVERITIES
from seawall.scan.assemble import ImageInventory
from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.report import (
    findings_document,
    inventory_document,
    pack,
    vulnerabilities_document,
)

# Share of the records per ecosystem (as published: the zip's folder name).
SHARES = {
    "Debian": 0.30,
    "Ubuntu": 0.25,
    "npm": 0.12,
    "PyPI": 0.10,
    "Maven": 0.08,
    "Go": 0.08,
    "Alpine": 0.04,
    "crates.io": 0.03,
}
RELEASES = {
    "Debian": ("Debian:11", "Debian:12", "Debian:13"),
    "Ubuntu": ("Ubuntu:20.04:LTS", "Ubuntu:22.04:LTS", "Ubuntu:24.04:LTS"),
    "Alpine": ("Alpine:v3.18", "Alpine:v3.19", "Alpine:v3.20"),
}
NAMES = 4000  # distinct package names per ecosystem
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
DEBIAN_12 = Distro("debian", "12", "Debian GNU/Linux 12 (bookworm)")


def package_name(ecosystem: str, number: int) -> str:
    if ecosystem == "Maven":
        return f"org.synth:artifact-{number}"
    if ecosystem == "Go":
        return f"example.com/synth/module{number}"
    return f"synth-{ecosystem.lower().replace('.', '')}-{number}"


def _record(ecosystem: str, number: int, rng: random.Random) -> dict[str, Any]:
    name = package_name(ecosystem, rng.randrange(NAMES))
    year = 2000 + number % 25
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "modified": "2025-01-01T00:00:00Z",
        "published": "2024-01-01T00:00:00Z",
        "details": "synthetic advisory " + "x" * rng.randrange(200, 1500),
    }
    if ecosystem in RELEASES:
        cve = f"CVE-{year}-{100000 + number}"
        record["id"] = f"{ecosystem.upper()}-{cve}"
        record["upstream" if ecosystem == "Debian" else "related"] = [cve]
        affected = []
        for release in RELEASES[ecosystem]:
            events: list[dict[str, str]] = [{"introduced": "0"}]
            if rng.random() < 0.6:  # the rest: no fix yet
                events.append({"fixed": f"{rng.randrange(1, 9)}.{rng.randrange(20)}-1"})
            entry: dict[str, Any] = {
                "package": {"ecosystem": release, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
            if ecosystem == "Debian":
                entry["ecosystem_specific"] = {"urgency": rng.choice(["low", "medium", "high"])}
            affected.append(entry)
        record["affected"] = affected
        if ecosystem == "Ubuntu":
            record["severity"] = [{"type": "Ubuntu", "score": rng.choice(["low", "medium"])}]
        return record
    record["id"] = f"SYNTH-{ecosystem.upper().replace('.', '')}-{number}"
    record["aliases"] = [f"CVE-{year}-{200000 + number}"]
    record["severity"] = [{"type": "CVSS_V3", "score": CRITICAL}]
    kind = "SEMVER" if ecosystem in ("npm", "Go", "crates.io") else "ECOSYSTEM"
    record["affected"] = [
        {
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [
                {
                    "type": kind,
                    "events": [{"introduced": "0"}, {"fixed": f"{rng.randrange(1, 9)}.0.0"}],
                }
            ],
        }
    ]
    return record


def write_zips(root: Path, total: int, seed: int = 17) -> dict[str, int]:
    """`total` records split by `SHARES` into `<root>/<ECOSYSTEM>/all.zip`; the count of each."""
    rng = random.Random(seed)
    counts = {ecosystem: int(total * share) for ecosystem, share in SHARES.items()}
    counts["Debian"] += total - sum(counts.values())
    number = 0
    for ecosystem, count in counts.items():
        folder = root / ecosystem
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(folder / "all.zip", "w", zipfile.ZIP_DEFLATED) as out:
            for _ in range(count):
                number += 1
                record = _record(ecosystem, number, rng)
                out.writestr(f"{record['id']}.json", json.dumps(record))
    return counts


def debian_reports(count: int, packages_each: int = 300, seed: int = 5) -> Iterator[ReportRow]:
    """`count` complete reports of Debian 12 images with PyPI and npm packages, scanned before
    any import (no findings): what a re-match then reads. They use the ecosystem keys
    `Debian:12`, `PyPI` and `npm` only."""
    rng = random.Random(seed)
    for i in range(count):
        packages = []
        for _ in range(packages_each):
            ecosystem = rng.choice(("Debian", "Debian", "PyPI", "npm"))
            name = package_name(ecosystem, rng.randrange(NAMES))
            version = (
                f"{rng.randrange(1, 9)}.{rng.randrange(20)}-0"
                if ecosystem == "Debian"
                else (f"{rng.randrange(1, 9)}.{rng.randrange(9)}.0")
            )
            source = (name, version) if ecosystem == "Debian" else (None, None)
            packages.append(Package(ecosystem, name, version, *source, f"pkg:{name}", "p"))
        inventory = ImageInventory(
            distro=DEBIAN_12,
            os_release={"ID": "debian", "VERSION_ID": "12"},
            packages=packages,
            files=1000,
            bytes_read=1 << 20,
        )
        yield ReportRow(
            digest="sha256:" + hashlib.sha256(f"synth-image-{i}".encode()).hexdigest(),
            status="complete",
            scanned_at=time.time(),
            seconds=1.0,
            vulndb_version=None,
            distro="debian 12",
            packages=len(packages),
            counts=dict.fromkeys(SEVERITIES, 0),
            secrets=0,
            malware=0,
            error=None,
            inventory=pack(inventory_document(inventory)),
            vulnerabilities=pack(vulnerabilities_document([])),
            findings=pack(findings_document(inventory)),
        )
