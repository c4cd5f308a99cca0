"""CVSS base scores from vector strings: v3.0 and v3.1 (FIRST CVSS v3.1 specification, section 7)
and v2 (CVSS v2 guide, section 3.2.1). Temporal and environmental metrics are ignored: reports show
the base score. Written from the specifications' formulas; no third-party CVSS library.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal


class InvalidVector(ValueError):
    """The vector is not a complete, well-formed CVSS base vector."""


_V3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    "S": {"U": 0.0, "C": 0.0},  # scope changes the formula, not a weight
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# Privileges Required weighs more when the scope changes.
_V3_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}

_V2_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"L": 0.395, "A": 0.646, "N": 1.0},
    "AC": {"H": 0.35, "M": 0.61, "L": 0.71},
    "Au": {"M": 0.45, "S": 0.56, "N": 0.704},
    "C": {"N": 0.0, "P": 0.275, "C": 0.660},
    "I": {"N": 0.0, "P": 0.275, "C": 0.660},
    "A": {"N": 0.0, "P": 0.275, "C": 0.660},
}


def _metrics(parts: list[str], weights: dict[str, dict[str, float]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition(":")
        if not sep or name in found:
            raise InvalidVector(f"bad or repeated metric {part!r}")
        found[name] = value
    for name, allowed in weights.items():
        if found.get(name) not in allowed:
            raise InvalidVector(f"metric {name} missing or not one of {sorted(allowed)}")
    return found


def _roundup_31(value: float) -> float:
    # CVSS 3.1 Appendix A: round up to one decimal, working in integers so that float noise
    # (e.g. 4.000000000000001) does not push a score up a tenth.
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (math.floor(scaled / 10_000) + 1) / 10.0


def _roundup_30(value: float) -> float:
    return math.ceil(value * 10) / 10.0


def cvss3_base_score(vector: str) -> float:
    """Base score of a "CVSS:3.0/..." or "CVSS:3.1/..." vector; raises InvalidVector."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise InvalidVector(f"not a CVSS v3 vector: {vector[:40]!r}")
    found = _metrics(rest.split("/"), _V3_WEIGHTS) if rest else _metrics([], _V3_WEIGHTS)
    weight = {name: _V3_WEIGHTS[name].get(found[name], 0.0) for name in _V3_WEIGHTS}
    changed = found["S"] == "C"
    privileges = _V3_PR_CHANGED[found["PR"]] if changed else weight["PR"]
    iss = 1 - (1 - weight["C"]) * (1 - weight["I"]) * (1 - weight["A"])
    impact = (7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15) if changed else 6.42 * iss
    exploitability = 8.22 * weight["AV"] * weight["AC"] * privileges * weight["UI"]
    if impact <= 0:
        return 0.0
    roundup = _roundup_31 if prefix == "CVSS:3.1" else _roundup_30
    total = 1.08 * (impact + exploitability) if changed else impact + exploitability
    return roundup(min(total, 10.0))


def cvss2_base_score(vector: str) -> float:
    """Base score of a CVSS v2 vector ("AV:N/AC:L/Au:N/C:P/I:P/A:P", optionally in parentheses
    or with a "CVSS:2.0/" prefix); raises InvalidVector."""
    text = vector.strip().removeprefix("(").removesuffix(")").removeprefix("CVSS:2.0/")
    found = _metrics(text.split("/"), _V2_WEIGHTS)
    weight = {name: _V2_WEIGHTS[name][found[name]] for name in _V2_WEIGHTS}
    impact = 10.41 * (1 - (1 - weight["C"]) * (1 - weight["I"]) * (1 - weight["A"]))
    exploitability = 20 * weight["AV"] * weight["AC"] * weight["Au"]
    factor = 0.0 if impact == 0 else 1.176
    raw = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * factor
    # v2 rounds to one decimal, half up (not Python's banker's rounding).
    return float(Decimal(repr(raw)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def level_v3(score: float) -> str:
    """The CVSS v3 qualitative rating of a base score."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else "none"


def level_v2(score: float) -> str:
    """The NVD rating of a CVSS v2 base score (v2 has no "critical")."""
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else "none"
