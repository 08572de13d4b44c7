"""The operator's line commands on a Linux warehouse terminal (the handheld has a keypad).

One command per line, case-insensitive, words separated by spaces::

    receive        mode: goods in (goods.in)
    dispatch       mode: goods out (goods.out, asks the gateway first)
    stocktake      mode: count what is on the shelves (goods.count)
    pack           mode: read the outer package, then the inner ones (goods.pack)
    unpack         mode: the same, taking them apart
    product N      the product of the reads (products lists them)
    party N        the supplier or buyer (parties lists them)
    products       the products on file
    parties        the suppliers and buyers on file
    read CODE      a code typed by hand, as if scanned (or a tag's EPC in hex)
    drop           remove the last read
    record         record the reads (a dispatch asks the gateway first)
    cancel         drop the reads and the choices
    status         the devices, the log, the record in progress
    help           this list
    quit           stop the terminal (records still waiting are sent at the next start)

:func:`parse` is total: any text gives a :class:`Command` or raises :class:`InputError`.
"""

from __future__ import annotations

from functools import partial

from edge_agent.terminal.commands import Command, InputError, Special, help_text, parse_line
from wire.goods_records import COUNT, DISPATCH, PACK, RECEIVE, UNPACK

__all__ = ["BARE", "HELP", "MODE_WORDS", "NUMBERED", "Command", "InputError", "parse"]

MODE_WORDS = {
    "receive": RECEIVE,
    "dispatch": DISPATCH,
    "stocktake": COUNT,
    "pack": PACK,
    "unpack": UNPACK,
}
NUMBERED = {"product": 999999, "party": 999999}
BARE = ("products", "parties", "drop", "record", "cancel", "status", "help", "quit")
MAX_CODE = 180
HELP = help_text(__doc__)


def _mode(word: str, args: list[str], line: str) -> Command:
    if args:
        raise InputError(f"{word} takes nothing after it")
    return Command("mode", number=MODE_WORDS[word])


def _read(args: list[str], line: str) -> Command:
    code = line.strip()[4:].strip()
    if not code or len(code) > MAX_CODE:
        raise InputError(f"read needs a code (1..{MAX_CODE} characters)")
    return Command("read", text=code)


SPECIAL: dict[str, Special] = {"read": _read, **{w: partial(_mode, w) for w in MODE_WORDS}}


def parse(line: str) -> Command | None:
    """The command on ``line``; None for a blank line."""
    return parse_line(line, NUMBERED, BARE, SPECIAL)
