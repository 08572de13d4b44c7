"""Helpers shared by the CLI modules: logging set-up, turning errors into exits, signals."""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import click

from hostlib.errors import TraceedgeError
from traceedge.logformat import FORMATS, formatter

T = TypeVar("T")

log = logging.getLogger(__name__)

NOT_RUNNING = 3
"""Exit status of ``agent status`` and ``collector status`` when the role is not running (as
an init script's ``status``: 0 running, 3 not running; 1 is an error such as a bad config)."""


def setup_logging(verbose: int, log_format: str = "text") -> None:
    """Log to stderr at WARNING, INFO (``-v``) or DEBUG (``-vv``), as ``text`` or ``json``
    (:mod:`traceedge.logformat`). The handler is not added when logging is already set up
    (under a test runner that captures it)."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    # httpx says every request at INFO (one line per POST to the platform): only with -vv;
    # httpcore's dozen DEBUG lines per request: never
    logging.getLogger("httpx").setLevel(level if verbose > 1 else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


@contextmanager
def friendly_errors(where: str = "") -> Iterator[None]:
    """Errors a user can cause become a one-line message and exit status 1, not a
    traceback: ours (bad config, a broker that cannot be reached), the operating system's
    (a missing folder, a port in use, no permission) and SQLite's (a file that is not a
    store). ``where`` (a path) starts the message when the error does not name one; the
    traceback goes to the log at debug level (``-vv``)."""
    try:
        yield
    except TraceedgeError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        log.debug("the traceback of the error below", exc_info=True)
        if exc.filename is not None and exc.strerror:
            path = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else exc.filename
            raise click.ClickException(f"{path}: {exc.strerror}") from exc
        raise click.ClickException(f"{where}: {exc}" if where else str(exc)) from exc
    except sqlite3.Error as exc:
        log.debug("the traceback of the error below", exc_info=True)
        raise click.ClickException(f"{where}: {exc}" if where else str(exc)) from exc


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the command as Ctrl-C does, with a ``KeyboardInterrupt`` in
    the main thread: every ``finally`` runs, so whatever the command started is stopped."""
    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, signal.default_int_handler) for s in stops}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def config_option(role: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """The ``--config FILE`` every role command takes."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        required=True,
        help=f"{role} config file (TOML).",
    )


def verbose_option(f: Callable[..., T]) -> Callable[..., T]:
    return click.option(
        "-v", "--verbose", count=True, help="More log output (-v info, -vv debug)."
    )(f)


def log_format_option(f: Callable[..., T]) -> Callable[..., T]:
    """``--log-format text|json`` of the long-running commands."""
    return click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help="Log lines on stderr: text for a terminal, json (one object a line) for a "
        "log collector such as journald.",
    )(f)
