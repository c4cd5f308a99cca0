"""How bad a vulnerability is: the one scale that reports, counts, filters and the API use."""

from __future__ import annotations

# Worst first: a filter "this severe or worse" takes a prefix of it.
SEVERITIES = ("critical", "high", "medium", "low", "unknown")
