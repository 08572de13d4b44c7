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

from edge_agent.terminal.console import MAX_LINE, Command, InputError
from wire.goods_records import COUNT, DISPATCH, PACK, RECEIVE, UNPACK

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
HELP = __doc__.split("::", 1)[1].split("\n\n:func:")[0].strip("\n") if __doc__ else ""


def parse(line: str) -> Command | None:
    """The command on ``line``; None for a blank line."""
    if len(line) > MAX_LINE:
        raise InputError(f"line longer than {MAX_LINE} characters")
    words = line.split()
    if not words:
        return None
    name, args = words[0].lower(), words[1:]
    if name in MODE_WORDS:
        if args:
            raise InputError(f"{name} takes nothing after it")
        return Command("mode", number=MODE_WORDS[name])
    if name in NUMBERED:
        top = NUMBERED[name]
        if len(args) != 1 or not (args[0].isascii() and args[0].isdigit()):
            raise InputError(f"{name} needs one number, e.g. '{name} 2'")
        n = int(args[0])
        if not 1 <= n <= top:
            raise InputError(f"{name}: 1..{top}, not {n}")
        return Command(name, number=n)
    if name == "read":
        code = line.strip()[4:].strip()
        if not code or len(code) > MAX_CODE:
            raise InputError(f"read needs a code (1..{MAX_CODE} characters)")
        return Command("read", text=code)
    if name in BARE:
        if args:
            raise InputError(f"{name} takes nothing after it")
        return Command(name)
    raise InputError(f"unknown command {name[:20]!r}: type help")
