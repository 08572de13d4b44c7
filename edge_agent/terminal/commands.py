"""What both Linux terminals' line commands share: the :class:`Command`, the
:class:`InputError` and :func:`parse_line`, the reading of one line into a command (each
app's console module names its numbered and bare words and its own special ones).

:func:`parse_line` is total: any text gives a :class:`Command`, None (a blank line), or
raises :class:`InputError` with a message for the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

MAX_LINE = 200

# A word with its own syntax: (its arguments, the whole line) -> the command.
Special = Callable[[list[str], str], "Command"]


class InputError(ValueError):
    """A line the terminal cannot take; the message says what it expects."""


@dataclass(frozen=True)
class Command:
    name: str
    number: int = 0
    text: str = ""

    def __str__(self) -> str:
        if self.number:
            return f"{self.name} {self.number}"
        if self.text:
            return f"{self.name} {self.text}"
        return self.name


def help_text(doc: str | None) -> str:
    """The command list of a console module's docstring (between ``::`` and ``:func:``)."""
    return doc.split("::", 1)[1].split("\n\n:func:")[0].strip("\n") if doc else ""


def parse_line(
    line: str,
    numbered: Mapping[str, int],
    bare: Sequence[str],
    special: Mapping[str, Special],
) -> Command | None:
    """The command on ``line``; None for a blank line."""
    if len(line) > MAX_LINE:
        raise InputError(f"line longer than {MAX_LINE} characters")
    words = line.split()
    if not words:
        return None
    name, args = words[0].lower(), words[1:]
    if name in numbered:
        top = numbered[name]
        if len(args) != 1 or not (args[0].isascii() and args[0].isdigit()):
            raise InputError(f"{name} needs one number, e.g. '{name} 2'")
        n = int(args[0])
        if not 1 <= n <= top:
            raise InputError(f"{name}: 1..{top}, not {n}")
        return Command(name, number=n)
    if name in special:
        return special[name](args, line)
    if name in bare:
        if args:
            raise InputError(f"{name} takes nothing after it")
        return Command(name)
    raise InputError(f"unknown command {name[:20]!r}: type help")
