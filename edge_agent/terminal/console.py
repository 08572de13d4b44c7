"""The operator's line commands on a Linux stall terminal (the MCU terminal has a keypad).

One command per line, case-insensitive, words separated by spaces::

    goods N        take goods N (weighed: the scale's stable reading; counted: then pieces)
    pieces N       how many pieces of the counted goods just taken (1..100000)
    pay METHOD     cash, card, wechat, alipay, unionpay, credit, other (or 1..7)
    drop           remove the last line of the sale
    settle         record the sale, print its receipt
    cancel         drop the whole sale
    reprint [CODE] print the newest receipt again (or the one with trace code CODE)
    status         the devices, the log, the sale in progress
    help           this list
    quit           stop the terminal (records still waiting are sent at the next start)

:func:`parse` is total: any text gives a :class:`Command` or raises :class:`InputError`
with a message for the operator.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire.settlement import PAY

MAX_LINE = 200
NUMBERED = {"goods": 99999, "pieces": 100000}
BARE = ("drop", "settle", "cancel", "status", "help", "quit")
HELP = __doc__.split("::", 1)[1].split("\n\n:func:")[0].strip("\n") if __doc__ else ""


class InputError(ValueError):
    """A line the terminal cannot take; the message says what it expects."""


@dataclass(frozen=True)
class Command:
    name: str
    number: int = 0
    text: str = ""

    def __str__(self) -> str:
        if self.name in NUMBERED:
            return f"{self.name} {self.number}"
        if self.text:
            return f"{self.name} {self.text}"
        return self.name


def parse(line: str) -> Command | None:
    """The command on ``line``; None for a blank line."""
    if len(line) > MAX_LINE:
        raise InputError(f"line longer than {MAX_LINE} characters")
    words = line.split()
    if not words:
        return None
    name, args = words[0].lower(), words[1:]
    if name in NUMBERED:
        top = NUMBERED[name]
        if len(args) != 1 or not (args[0].isascii() and args[0].isdigit()):
            raise InputError(f"{name} needs one number, e.g. '{name} 2'")
        n = int(args[0])
        if not 1 <= n <= top:
            raise InputError(f"{name}: 1..{top}, not {n}")
        return Command(name, number=n)
    if name == "pay":
        if len(args) != 1:
            raise InputError(f"pay needs one of {', '.join(PAY)} (or 1..{len(PAY)})")
        a = args[0].lower()
        if a.isascii() and a.isdigit() and 1 <= int(a) <= len(PAY):
            return Command("pay", text=PAY[int(a) - 1])
        if a not in PAY:
            raise InputError(f"pay: one of {', '.join(PAY)} (or 1..{len(PAY)}), not {a!r}")
        return Command("pay", text=a)
    if name == "reprint":
        if len(args) > 1 or (args and not (args[0].isascii() and args[0].isalnum())):
            raise InputError("reprint takes at most one trace code")
        return Command("reprint", text=args[0] if args else "")
    if name in BARE:
        if args:
            raise InputError(f"{name} takes nothing after it")
        return Command(name)
    raise InputError(f"unknown command {name[:20]!r}: type help")
