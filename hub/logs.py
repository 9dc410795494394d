"""Logging for every OrderHub process (web, worker, CLI): one format, the ``log_level`` setting."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str) -> None:
    """Send records at ``level`` and above to stderr. Without this a bare worker process has
    only Python's last-resort handler, which drops everything below WARNING (the ``log``
    notifier's messages among them)."""
    logging.basicConfig(level=level, format=FORMAT)
    logging.getLogger().setLevel(level)
