"""What the tests of both Linux terminals' command parsers check alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edge_agent.terminal.commands import Command, InputError

Parse = Callable[[str], Command | None]


def check_total(parse: Parse, line: str) -> None:
    """Any text is a command, a blank line, or an error that says something."""
    try:
        cmd = parse(line)
    except InputError as exc:
        assert str(exc)
        return
    assert cmd is None or isinstance(cmd, Command)


def check_refused(parse: Parse, line: str, message: str) -> None:
    """``line`` is refused with an error that says ``message``."""
    with pytest.raises(InputError, match=message):
        parse(line)
