"""``python -m bench``: run the benchmark, print the table, write bench/results/latest.json."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from bench import (
    report_audit,
    report_console,
    report_gc,
    report_inventory,
    report_s3,
    report_scan,
)
from bench.options import parse_args
from bench.report import footer, make_console, render, write_json
from bench.runner import log, run


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """The first signal unwinds the run; later ones must not cut its clean-up short."""
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, lambda n, f: log(f"{signal.Signals(n).name}: still cleaning up"))
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    # SIGTERM/SIGHUP (a CI timeout, a closed terminal) unwind like Ctrl-C, so that every
    # server started is stopped and the PostgreSQL database dropped; SIGINT is re-armed in
    # case the harness was started from a non-interactive shell's background job (ignored).
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _interrupt)
    try:
        results = run(opts)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'SIGINT'}); every server started was stopped")
        return 130
    console = make_console()
    verdicts = render(results, console) + report_s3.render(results, console)
    verdicts += report_audit.render(results, console)
    verdicts += report_scan.render(results, console)
    verdicts += report_gc.render(results, console)
    verdicts += report_inventory.render(results, console)
    verdicts += report_console.render(results, console)
    footer(results, console)
    write_json(results, verdicts, opts.json_path)
    log(f"results written to {opts.json_path}")
    targets = results["targets"]
    audit = results.get("audit", {})
    scan = results.get("scan", {})
    assert isinstance(targets, dict) and isinstance(audit, dict) and isinstance(scan, dict)
    failed = [name for name, r in (targets | audit).items() if r.get("errors")]
    failed += ["scan"] if scan.get("errors") else []
    gc = results.get("gc", {})
    assert isinstance(gc, dict)
    failed += [f"gc {name}" for name, r in gc.items() if r.get("errors")]
    inventory = results.get("inventory", {})
    assert isinstance(inventory, dict)
    failed += ["inventory"] if inventory.get("errors") else []
    s3 = results.get("s3", {})
    assert isinstance(s3, dict)
    failed += ["s3"] if s3.get("errors") else []
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
