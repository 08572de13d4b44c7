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

from edge_agent.terminal.commands import Command, InputError, help_text, parse_line
from wire.settlement import PAY

__all__ = ["BARE", "HELP", "NUMBERED", "Command", "InputError", "parse"]

NUMBERED = {"goods": 99999, "pieces": 100000}
BARE = ("drop", "settle", "cancel", "status", "help", "quit")
HELP = help_text(__doc__)


def _pay(args: list[str], line: str) -> Command:
    if len(args) != 1:
        raise InputError(f"pay needs one of {', '.join(PAY)} (or 1..{len(PAY)})")
    a = args[0].lower()
    if a.isascii() and a.isdigit() and 1 <= int(a) <= len(PAY):
        return Command("pay", text=PAY[int(a) - 1])
    if a not in PAY:
        raise InputError(f"pay: one of {', '.join(PAY)} (or 1..{len(PAY)}), not {a!r}")
    return Command("pay", text=a)


def _reprint(args: list[str], line: str) -> Command:
    if len(args) > 1 or (args and not (args[0].isascii() and args[0].isalnum())):
        raise InputError("reprint takes at most one trace code")
    return Command("reprint", text=args[0] if args else "")


def parse(line: str) -> Command | None:
    """The command on ``line``; None for a blank line."""
    return parse_line(line, NUMBERED, BARE, {"pay": _pay, "reprint": _reprint})
