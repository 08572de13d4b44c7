"""Feeds a batch of payloads (a JSON list of hex strings, made by hypothesis on the host)
to the firmware's parsers of what arrives from the gateway, under the real interpreter:
``wire.auth``'s ack, gate-answer and stop-list parsers (a value or a ``WireError``, never
anything else), then the firmware's own entry points (the sender's ack handler, the
runtime's command dispatch to the gate client and the settlement app), which must take
anything without raising and act on none of it.

A payload that opens as a genuine ack or stop list is not fed on: it carries the agent's
own content (MicroPython's JSON parser takes more than strict JSON, e.g. a genuine ack
with its commas and colons removed, and the MAC covers what is parsed, not the bytes), so
acting on it is right. Prints ``FUZZ ok <fed> genuine <skipped>``."""

import json

import scen

from wire import auth
from wire.envelope import WireError

_TYPING = False
if _TYPING:
    from typing import Any


def _opens(fn: "Any", *args: "Any") -> bool:
    """True if ``fn`` parsed and verified; False on ``WireError``; anything else raises."""
    try:
        fn(*args)
    except WireError:
        return False
    return True


def run(path: str) -> None:
    with open(path) as f:
        batch = [bytes.fromhex(h) for h in json.load(f)]
    rig = scen.settlement()
    rt = rig.rt
    dev, keys = rt.ident.dev, rt.ident.keys.recent
    for i in range(3):
        rt.log.append(i + 1, b"record %d" % (i + 1))
    sender = rt.sender
    sender.high = 3  # as if all three were sent: only the seal stands between them and an ack
    req = rt.gate.ask({"stage": "pre", "cyl": "3301062312345"}, 600000)
    genuine = 0
    for p in batch:
        ack = _opens(auth.open_terminal_ack, p, dev, keys)
        stop_list = _opens(auth.open_stop_list, p, dev, keys)  # both parsers see every payload
        if ack or stop_list:
            genuine += 1
            continue
        try:
            msg = json.loads(p)
        except ValueError:
            msg = None
        if isinstance(msg, dict):
            assert auth.check_gate_answer(msg, dev, req.nonce, keys) in (True, False)
        sender.on_ack(p)
        rt._on_cmd(p)
    app: Any = rt.app
    fed = len(batch) - genuine
    assert rt.log.pending() == 3 and sender.forged_acks == fed, (sender.forged_acks, fed)
    assert req.state == 0 and not req.allowed, "no answer was taken"
    assert app.stop_ver == 0 and app.stopped == [], "no stop list was taken"
    print("FUZZ ok %d genuine %d" % (fed, genuine))
