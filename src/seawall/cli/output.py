"""Where tables go: the one console the commands print Rich tables and report lines to.

At a terminal Rich fits tables to its width, wrapping long text cells; a column that holds a
digest is `no_wrap` there, and a line that holds one is printed with `soft_wrap`, so the
terminal folds it without a newline inside the digest. Into a pipe or a file (where Rich would
assume 80 columns, or $COLUMNS) nothing is wrapped at all: every row and line stays whole, for
grep, cut and copy.
"""

from __future__ import annotations

from rich.console import Console

# Wide enough that no row of ours reaches it; Rich pads nothing beyond a table's own width.
PIPE_WIDTH = 100_000


def console() -> Console:
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=PIPE_WIDTH)


def byte_size(n: float) -> str:
    """A size as the commands print it: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.0 GiB`, `2.0 TiB`."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
