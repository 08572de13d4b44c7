"""Helpers shared by the CLI modules: logging set-up and turning our errors into exits."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import click

from hostlib.errors import TraceedgeError

T = TypeVar("T")


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Our errors become a one-line message and exit status 1, not a traceback."""
    try:
        yield
    except TraceedgeError as exc:
        raise click.ClickException(str(exc)) from exc


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
