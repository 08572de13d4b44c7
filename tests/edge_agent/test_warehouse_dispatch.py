"""The warehouse terminal's dispatch-gate client with the real sealing (``wire.auth``):
only a sealed answer for the pending request's nonce counts; forged, replayed, late and
malformed answers are counted and ignored; no answer in time is None (nothing leaves)."""

from __future__ import annotations

import asyncio
import json
import threading

from edge_agent.terminal.dispatch import DispatchClient
from hostlib.registry import Device
from wire import auth

DEV = Device("WHS-T01-00AA01", b"\7" * 32, "warehouse-terminal", "T01")
OTHER_KEY = b"\x08" * 32


def answer(req: dict[str, object], key: bytes = DEV.key, **kw: object) -> dict[str, object]:
    msg = auth.gate_answer(
        DEV.dev, req["id"], str(req["n"]), str(kw.get("decision", "allow")),
        list(kw.get("reasons", [])), 1, key, seq=kw.get("seq", 5),  # type: ignore[call-overload]
    )  # fmt: skip
    return auth.parse(msg, auth.T_GATE)


def test_only_the_sealed_answer_for_this_nonce_counts() -> None:
    sent: list[dict[str, object]] = []
    client = DispatchClient(DEV, lambda p: sent.append(json.loads(p)) or True, boot=3)

    async def main() -> dict[str, object] | None:
        task = asyncio.create_task(client.ask({"items": ["epc:1"], "party": "x"}, 5.0))
        while not sent:
            await asyncio.sleep(0.01)
        req = sent[0]
        assert auth.check_dispatch_request(req, DEV.dev, [DEV.key])
        assert isinstance(req["n"], str) and len(req["n"]) == 32
        assert req["id"] == (3 << 16) + 1

        def mqtt_thread() -> None:
            assert not client.on_answer(answer(req, key=OTHER_KEY))  # forged
            assert not client.on_answer(dict(answer(req), n="0" * 32))  # another nonce
            assert not client.on_answer(dict(answer(req), id=99))  # another request
            bad = answer(req)
            bad.pop("mac")
            assert not client.on_answer(bad)  # unsealed
            assert client.on_answer(answer(req, decision="deny", reasons=["not_in_stock"]))
            assert not client.on_answer(answer(req))  # a replay after the answer

        t = threading.Thread(target=mqtt_thread)
        t.start()
        got = await task
        t.join()
        return got

    got = asyncio.run(main())
    assert got is not None and got["decision"] == "deny" and got["reasons"] == ["not_in_stock"]
    c = client.snapshot()
    assert c["dispatch_forged"] == 3 and c["dispatch_late"] == 2 and c["dispatch_answered"] == 1


def test_no_answer_in_time_is_none_and_a_late_allow_is_ignored() -> None:
    sent: list[dict[str, object]] = []
    up = {"link": False}

    def send(p: bytes) -> bool:
        if up["link"]:
            sent.append(json.loads(p))
        return up["link"]

    client = DispatchClient(DEV, send, boot=1)

    async def main() -> None:
        assert await client.ask({"items": []}, 0.3) is None  # the link never took it
        up["link"] = True
        assert await client.ask({"items": []}, 0.3) is None  # sent, never answered
        assert not client.on_answer(answer(sent[-1]))  # the allow, too late

    asyncio.run(main())
    c = client.snapshot()
    assert c["dispatch_timeouts"] == 2 and c["dispatch_late"] == 1 and len(sent) == 1
