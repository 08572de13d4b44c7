"""Fuzz every parser of the wire and the control plane, and every driver codec.

    python bench/fuzz.py [--inputs N] [--seed S] [--only NAME ...]

Each parser gets N inputs (default 1,000,000): about half generated (random bytes, random
JSON values, deep nesting, lone surrogates, huge counts) and half mutated from genuine
messages (bits flipped, bytes inserted, deleted, slices duplicated, truncated). A parser
may return or raise its one typed error (``WireError``, ``GateRequestError``,
``CodecError``); anything else is a *crash*. Handlers that must never raise (the agent's
intake check and command handler, the codecs' stream decoders) have no typed error at
all. The slowest input of each parser is recorded; one over 1 s counts as a *hang*.
Resident memory is measured before and after.

Human-readable lines first, then one JSON object on the last line::

    {"parsers": {"<name>": {"inputs": .., "inputs_per_s": .., "distinct_failures": ..,
     "crashes": 0, "hangs": 0, "slowest_ms": ..}, ...},
     "totals": {"inputs": .., "crashes": 0, "hangs": 0}, "rss_mb": {"start": .., "end": ..}}

``distinct_failures`` counts the distinct typed refusals (error class and reason).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import random
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from collector.verify import verify_batch  # noqa: E402
from drivers.codecs import (  # noqa: E402
    CodecError,
    barcode,
    cas_ecr,
    chafon,
    gs1,
    itemcodes,
    modbus_elevator,
    pcsc,
    r2000,
    sics,
    slink,
)
from edge_agent.commands import Commands  # noqa: E402
from edge_agent.fillgate import GateRequestError, parse_request  # noqa: E402
from edge_agent.intake import check_message  # noqa: E402
from edge_agent.outbox import Outbox  # noqa: E402
from edge_agent.registry_cache import RegistryCache  # noqa: E402
from hostlib.registry import Device, Registry, add_devices  # noqa: E402
from simulators.records import make_body  # noqa: E402
from wire import auth, command  # noqa: E402
from wire.batch import decode_batch  # noqa: E402
from wire.canonical import canonical  # noqa: E402
from wire.envelope import WireError, decode_record, make_record  # noqa: E402
from wire.limits import loads  # noqa: E402
from wire.schemas import default_validator  # noqa: E402

HANG_S = 1.0
KEY, GW_KEY = b"\x01" * 32, b"\x02" * 32
DEV, GW, SITE = "CYL-S1-0001", "GW-S1", "S1"
NOW = 1_763_900_000_000
CMD_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


class Never(Exception):
    """The typed error of a handler that must never raise: nothing is expected."""


def _bench_codecs() -> object:
    # bench/codecs.py would shadow the standard library's codecs as a plain import
    spec = importlib.util.spec_from_file_location("bench_codecs", ROOT / "bench" / "codecs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load_codec_streams() -> dict[str, tuple[Callable[[], object], bytes, object]]:
    return _bench_codecs().streams(6)  # type: ignore[attr-defined,no-any-return]


def _item_seeds() -> tuple[list[bytes], list[bytes]]:
    """Genuine item-code scans (UTF-8) and EPCs (raw bytes) from bench/codecs.py."""
    texts = _bench_codecs().item_texts(10)  # type: ignore[attr-defined]
    scans = [t.encode() for src, t in texts if src == "scan"]
    epcs = [bytes.fromhex(t) for src, t in texts if src == "epc"]
    return scans, epcs


# -- inputs -----------------------------------------------------------------------------------


def _json_value(rng: random.Random, depth: int = 0) -> object:
    r = rng.random()
    if depth > 4 or r < 0.4:
        return rng.choice(
            [None, True, 1, -(2**60), 2**53, 1.5, "", "x" * rng.randrange(40), "\ud800", "é"]
        )
    if r < 0.7:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ["v", "dev", "seq", "kind", "body", "mac", "t", "site", "gw", "b", "recs", "id", "n"]
    return {rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randrange(6))}


def _generated(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.35:
        return rng.randbytes(rng.randrange(300))
    if r < 0.75:
        return json.dumps(_json_value(rng), ensure_ascii=rng.random() < 0.5).encode(
            "utf-8", "surrogatepass"
        )
    if r < 0.9:
        n = rng.choice([63, 64, 65, 200, 1000, 5000, 50_000])
        opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}"), (b"[1,", b"]")])
        return opener * n + closer * n
    return b"[" + b"0," * rng.randrange(10_000) + b"0]"


def _mutated(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randrange(1, 9)):
        op = rng.randrange(5)
        at = rng.randrange(len(data) + 1)
        if op == 0 and at < len(data):
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at:at] = rng.randbytes(rng.randrange(1, 5))
        elif op == 2:
            del data[at : at + rng.randrange(1, 9)]
        elif op == 3:
            data[at:at] = data[at : at + rng.randrange(1, 65)]
        else:
            del data[at:]
    return bytes(data)


# -- the parsers ------------------------------------------------------------------------------


class Target:
    """One parser: how to call it, its typed error, genuine inputs to mutate."""

    def __init__(
        self,
        name: str,
        call: Callable[[bytes], object],
        error: type[Exception],
        seeds: list[bytes],
        wrap: Callable[[bytes], bytes] | None = None,
        max_len: int | None = None,
    ) -> None:
        self.name, self.call, self.error, self.seeds, self.wrap = name, call, error, seeds, wrap
        self.max_len = max_len


def _record(seq: int) -> bytes:
    body = make_body("cylinder.fill", random.Random(seq), DEV, seq, SITE)
    return canonical(make_record(DEV, seq, 1, "cylinder.fill", NOW, "ntp", body, KEY))


def targets(tmp: Path) -> list[Target]:
    reg_path = tmp / "devices.json"
    add_devices(
        reg_path,
        [Device(DEV, KEY, "cylinder-reader", SITE), Device(GW, GW_KEY, "gateway", SITE)],
        provisioned=1,
    )
    registry = Registry(reg_path)
    validator = default_validator()
    recs = [_record(s) for s in range(1, 4)]
    batch_json = b'{"site":"S1","gw":"GW-S1","b":"b1","recs":[' + b",".join(recs) + b"]}"
    ack = auth.terminal_ack(DEV, 5, [(1, 5)], [3], KEY)
    batch_ack = auth.batch_ack(SITE, GW, "b1", "0" * 64, 1, 0, 0, GW_KEY)
    stop = auth.stop_list(DEV, 2, [{"batch_id": "B1"}], KEY)
    status = auth.status(SITE, GW, {"outbox": 3, "links": {"up": True}}, GW_KEY)
    cmd = command.sign_command(
        {"type": "stop_list", "site": SITE, "version": 1, "expires": NOW * 2, "batches": []},
        CMD_KEY,
    )
    gate_req = json.dumps(
        {
            "id": 7,
            "n": "9f2c41d07be85a13c4e6f0b2a7d95e31",
            "stage": "pre",
            "cyl": "3101052301A0042",
            "operator": "OP-03",
            "medium": "lpg",
            "pre": {"appearance_ok": True, "residual_kpa": 120, "tare_g": 15200},
        }
    ).encode()
    outbox = Outbox(tmp / "outbox.sqlite", 10**9)
    gw = registry.get(GW)
    assert gw is not None
    commands = Commands(
        outbox, RegistryCache(outbox), lambda *a: True, SITE, CMD_KEY.public_key(), registry, gw
    )

    def gate(p: bytes) -> object:
        try:
            obj = loads(p, 4096)
        except WireError:
            obj = None
        return parse_request(obj)

    def gate_answer(p: bytes) -> object:
        return auth.check_gate_answer(auth.parse(p, auth.T_GATE), DEV, "0" * 32, [KEY])

    def intake(p: bytes) -> object:
        return check_message(f"t/{DEV}/rec", p, "", validator, registry)

    def collector_batch(p: bytes) -> object:
        vb = verify_batch(SITE, p, registry, validator, 1 << 20)
        for bad in vb.bad:
            bad.payload.decode()  # what the collector quarantines must be storable
        return vb

    out = [
        Target("decode_record", decode_record, WireError, recs),
        Target("decode_batch", decode_batch, WireError, [batch_json], zlib.compress),
        Target("verify_batch", collector_batch, WireError, [batch_json], zlib.compress),
        Target(
            "open_terminal_ack", lambda p: auth.open_terminal_ack(p, DEV, [KEY]), WireError, [ack]
        ),
        Target(
            "open_batch_ack",
            lambda p: auth.open_batch_ack(p, SITE, GW, [GW_KEY]),
            WireError,
            [batch_ack],
        ),
        Target("open_stop_list", lambda p: auth.open_stop_list(p, DEV, [KEY]), WireError, [stop]),
        Target(
            "site_status",
            lambda p: auth.verify(auth.parse(p, auth.T_STATUS, 8192), [GW_KEY]),
            WireError,
            [status],
        ),
        Target("check_gate_answer", gate_answer, WireError, [ack, stop]),
        Target(
            "verify_command",
            lambda p: command.verify_command(p, CMD_KEY.public_key(), SITE, NOW),
            WireError,
            [cmd],
        ),
        Target("gate_request", gate, GateRequestError, [gate_req]),
        Target("check_message", intake, Never, recs),
        Target("on_command", lambda p: commands.on_command(f"edge/{SITE}/cmd", p), Never, [cmd]),
    ]
    for name, (factory, stream, _) in _load_codec_streams().items():

        def feed(p: bytes, factory: Callable[[], object] = factory) -> object:
            return factory().feed(p)  # type: ignore[attr-defined]

        # One read from a serial line: the transport hands the decoder what is waiting (at
        # most 4 KiB, drivers/transports/serial_port.py), at 57,600 baud tens to hundreds
        # of bytes per read; the decoder buffers across reads up to 4 KiB. Inputs here are
        # up to 512 bytes so a million of them run in minutes: the length-prefixed
        # decoders try every byte of garbage as a frame start, linear in the bytes (about
        # 17 us a byte for chafon, 10 % of a core for a line of pure garbage).
        out.append(Target(f"codec.{name}.feed", feed, Never, [stream], max_len=512))
    for name, fn in (
        ("sics.decode_reply", sics.decode_reply),
        ("sics.decode_command", sics.decode_command),
        ("cas_ecr.decode_reading", cas_ecr.decode_reading),
        ("chafon.decode_response", chafon.decode_response),
        ("chafon.decode_command", chafon.decode_command),
        ("r2000.decode_response", r2000.decode_response),
        ("r2000.decode_command", r2000.decode_command),
        ("pcsc.decode_uid_response", pcsc.decode_uid_response),
        ("pcsc.decode_apdu", pcsc.decode_apdu),
        ("barcode.decode_scan", barcode.decode_scan),
        ("slink.decode", slink.decode),
    ):
        out.append(Target(f"codec.{name}", fn, CodecError, [_codec_seed(name)]))
    out.append(
        Target(
            "codec.gs1.parse_element_string",
            lambda p: gs1.parse_element_string(p.decode("latin-1")),
            CodecError,
            [b"0109506000134352\x1d10LOT1\x1d3103000195"],
        )
    )
    out.append(
        Target(
            "codec.gs1.parse_digital_link",
            lambda p: gs1.parse_digital_link(p.decode("latin-1")),
            CodecError,
            [b"https://id.gs1.org/01/09506000134352/10/LOT1?3103=000195"],
        )
    )
    item_scans, item_epcs = _item_seeds()
    out.append(Target("codec.itemcodes.parse_item", itemcodes.parse_item, CodecError, item_scans))
    out.append(
        Target(
            "codec.itemcodes.parse_item.epc",
            lambda p: itemcodes.parse_item(p, "epc"),
            CodecError,
            item_epcs,
        )
    )
    out.append(
        Target(
            "codec.itemcodes.parse_item.epc_hex",
            lambda p: itemcodes.parse_item(p.decode("latin-1"), "epc"),
            CodecError,
            [e.hex().encode() for e in item_epcs],
        )
    )
    out.append(
        Target(
            "codec.modbus_elevator.decode_status",
            lambda p: modbus_elevator.decode_status(
                [int.from_bytes(p[i : i + 2], "big") for i in range(0, len(p) - 1, 2)]
            ),
            CodecError,
            [bytes(range(40))],
        )
    )
    return out


def _codec_seed(name: str) -> bytes:
    """One genuine frame per pure decoder (the stream seeds come from bench/codecs.py)."""
    streams = _load_codec_streams()
    module = name.split(".")[0]
    if module in streams:
        return streams[module][1][:64]
    return bytes.fromhex("00a4040000") if module == "pcsc" else b"\x90\x00"


# -- the run ----------------------------------------------------------------------------------


def fuzz(t: Target, inputs: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    failures: set[str] = set()
    crashes: dict[str, str] = {}
    crash_count = hangs = 0
    slowest = 0.0
    t0 = time.perf_counter()
    for i in range(inputs):
        data = _mutated(rng, rng.choice(t.seeds)) if i % 2 else _generated(rng)
        if t.max_len is not None:
            data = data[: t.max_len]
        if t.wrap is not None and rng.random() < 0.8:
            data = t.wrap(data)
        s = time.perf_counter()
        try:
            t.call(data)
        except t.error as exc:
            failures.add(f"{type(exc).__name__}:{getattr(exc, 'reason', '')}")
        except Exception as exc:
            crash_count += 1
            key = f"{type(exc).__name__}: {str(exc)[:80]}"
            if key not in crashes:
                crashes[key] = data[:200].hex()
                traceback.print_exc(limit=4)
        took = time.perf_counter() - s
        if took > slowest:
            slowest = took
        if took > HANG_S:
            hangs += 1
    wall = time.perf_counter() - t0
    return {
        "inputs": inputs,
        "inputs_per_s": round(inputs / wall) if wall else 0,
        "distinct_failures": len(failures),
        "crashes": crash_count,
        "hangs": hangs,
        "slowest_ms": round(slowest * 1000, 2),
        "crash_kinds": crashes,
        "wall_s": round(wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=1_000_000, help="inputs per parser")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="parser names (default: all)")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # the handlers log every refusal
    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        all_targets = targets(Path(tmp))
        rss_start = proc.memory_info().rss
        results: dict[str, dict[str, object]] = {}
        for t in all_targets:
            if args.only and t.name not in args.only:
                continue
            r = fuzz(t, args.inputs, args.seed)
            results[t.name] = r
            print(
                f"{t.name:38} {r['inputs']:>9} inputs {r['inputs_per_s']:>8}/s "
                f"failures {r['distinct_failures']:>3} crashes {r['crashes']} "
                f"hangs {r['hangs']} slowest {r['slowest_ms']} ms",
                flush=True,
            )
        rss_end = proc.memory_info().rss
    totals = {
        "inputs": sum(int(r["inputs"]) for r in results.values()),  # type: ignore[call-overload]
        "crashes": sum(int(r["crashes"]) for r in results.values()),  # type: ignore[call-overload]
        "hangs": sum(int(r["hangs"]) for r in results.values()),  # type: ignore[call-overload]
    }
    rss = {"start": round(rss_start / 2**20, 1), "end": round(rss_end / 2**20, 1)}
    print(f"total {totals['inputs']} inputs, {totals['crashes']} crashes, {totals['hangs']} hangs")
    print(f"RSS {rss['start']} MB at start, {rss['end']} MB at end")
    print(json.dumps({"parsers": results, "totals": totals, "rss_mb": rss}))


if __name__ == "__main__":
    main()
