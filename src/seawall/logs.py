"""Structured JSON logs via structlog: on standard output in the server and `seawall worker`,
on standard error in commands whose standard output is their result."""

from __future__ import annotations

import io
import logging
import sys
from typing import TextIO, cast

import structlog

from seawall.config import Settings


class _StandardError(io.TextIOBase):
    """Whatever `sys.stderr` is when a line is written (it may be replaced meanwhile)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(settings: Settings, to_stderr: bool = False) -> None:
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    stream = cast(TextIO, _StandardError()) if to_stderr else None
    factory = structlog.PrintLoggerFactory(stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
