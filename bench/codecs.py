"""Frames decoded per second for each codec, against a trivial baseline in the same run.

    python bench/codecs.py [--frames N] [--chunk BYTES]

For each stream protocol a stream of N generated frames is fed to its ``Decoder`` in
``--chunk``-byte reads (as a serial port delivers them) and compared with a baseline
that only cuts the same stream into frames (``bytes.split`` on the delimiter, fixed-size
slicing, or a walk over the length prefix) without validating anything. PC/SC and the
elevator register map are message codecs: their baseline is slicing the message; item
codes (``itemcodes.parse_item`` over pesticide, seed, drug, GS1 and EPC texts) are
compared with splitting each text on whitespace.

Human-readable lines first, then one JSON object on the last line:
``{"<codec>": {"frames_per_s": .., "baseline_per_s": .., "ratio": ..}, ...}``.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.codecs import (
    Money,
    Weight,
    barcode,
    cas_ecr,
    chafon,
    epc,
    itemcodes,
    modbus_elevator,
    pcsc,
    r2000,
    sics,
    slink,
    toledo8217,
    toledo_continuous,
)
from wire.checkdigit import with_check_digit


def streams(n: int) -> dict[str, tuple[Callable[[], object], bytes, Callable[[bytes], int]]]:
    """codec -> (decoder factory, stream of n frames, baseline frame counter)."""

    def split_on(delim: bytes) -> Callable[[bytes], int]:
        return lambda s: len([f for f in s.split(delim) if f])

    def fixed(size: int) -> Callable[[bytes], int]:
        return lambda s: len([s[i : i + size] for i in range(0, len(s), size)])

    def length_prefixed(offset: int, extra: int) -> Callable[[bytes], int]:
        def count(s: bytes) -> int:
            frames = []
            i = 0
            while i < len(s):
                size = s[i + offset] + extra
                frames.append(s[i : i + size])
                i += size
            return len(frames)

        return count

    out: dict[str, tuple[Callable[[], object], bytes, Callable[[bytes], int]]] = {}
    out["sics"] = (
        sics.Decoder,
        b"".join(
            sics.encode_reply(sics.Reply("S", "SD"[i % 2], Weight(i * 7 - 5000, 2, "g")))
            for i in range(n)
        ),
        split_on(b"\r\n"),
    )
    out["toledo8217"] = (
        toledo8217.Decoder,
        b"".join(toledo8217.encode_weight(Weight(i % 99999, 3, "kg")) for i in range(n)),
        split_on(b"\r"),
    )
    out["cas_ecr"] = (
        cas_ecr.Decoder,
        b"".join(
            cas_ecr.encode_reading(
                cas_ecr.Reading("S", Weight(i % 9999, 3, "kg"), Money(1290, 2), Money(i % 99999, 2))
            )
            for i in range(n)
        ),
        split_on(b"\x03\x04"),
    )
    out["toledo_continuous"] = (
        toledo_continuous.Decoder,
        b"".join(
            toledo_continuous.encode_frame(
                toledo_continuous.Frame(Weight(i - n // 2, 2, "kg"), Weight(100, 2, "kg"))
            )
            for i in range(n)
        ),
        fixed(toledo_continuous.FRAME_LEN),
    )
    epcs = [bytes([i % 256]) * 12 for i in range(4)]
    out["chafon"] = (
        chafon.Decoder,
        b"".join(chafon.encode_inventory_response(0, epcs[: 1 + i % 4]) for i in range(n)),
        length_prefixed(0, 1),
    )
    out["r2000"] = (
        r2000.Decoder,
        b"".join(
            r2000.encode_tag_read(
                r2000.TagRead(1, i % 64, i % 4, 0x3000, bytes([i % 256]) * 12, 80)
            )
            for i in range(n)
        ),
        length_prefixed(1, 2),
    )
    # the serial link to terminals: point-to-point records, then bus frames (an address byte)
    out["slink"] = (
        slink.Decoder,
        b"".join(
            slink.encode(slink.REC, i % 256, b'{"seq":%d,"pad":"%s"}' % (i, b"x" * (i % 90)))
            for i in range(n // 2)
        ),
        length_prefixed(4, 7),
    )
    out["slink_bus"] = (
        slink.Decoder,
        b"".join(
            slink.encode(slink.REC, i % 256, b"r" * (20 + i % 90), 1 + i % 8, True)
            for i in range(n // 2)
        ),
        length_prefixed(5, 8),
    )
    gtins = []
    for i in range(n):
        gtins.append(with_check_digit(f"{950600013400 + i:013d}"))
    out["barcode"] = (
        barcode.Decoder,
        b"".join(
            barcode.encode_scan(barcode.gs1_scan({"01": g, "10": "LOT" + g[-4:], "3103": "000195"}))
            for g in gtins
        ),
        split_on(b"\r\n"),
    )
    return out


def item_texts(n: int) -> list[tuple[str, str]]:
    """n (source, text) pairs for :func:`drivers.codecs.itemcodes.parse_item`: pesticide
    trace URLs, seed label QRs, drug codes, GS1 element strings and SGTIN-96 EPCs in turn."""
    out: list[tuple[str, str]] = []
    for i in range(n):
        serial = f"{i:021d}"
        kind = i % 5
        if kind == 0:
            code = itemcodes.pesticide_code(
                {
                    "category": "1",
                    "registration_tail": "080385",
                    "production_type": 1 + i % 3,
                    "spec": "001",
                    "random": serial,
                }
            )
            out.append(("scan", "]Q1https://zs.example.com/p?code=" + code))
        elif kind == 1:
            out.append(
                (
                    "scan",
                    itemcodes.seed_qr(
                        "郑单958", "河南某种业", f"4101{i:016d}", "https://zs.example.cn/s"
                    ),
                )
            )
        elif kind == 2:
            out.append(("scan", "]C0" + itemcodes.drug_code("8123456", serial[-9:], "7890")))
        elif kind == 3:
            out.append(
                (
                    "scan",
                    "]d201"
                    + with_check_digit(f"{950600013400 + i:013d}")
                    + "21S"
                    + str(i)
                    + "\x1d10L1",
                )
            )
        else:
            out.append(("epc", epc.encode_sgtin96("09506000134352", i, 7)))
    return out


def best(fn: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """Fastest of ``repeat`` runs: (seconds, frames counted)."""
    times = []
    count = 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - started)
    return min(times), count


def bench_stream(make: Callable[[], object], stream: bytes, chunk: int) -> int:
    decoder = make()
    frames = 0
    for i in range(0, len(stream), chunk):
        for item in decoder.feed(stream[i : i + chunk]):  # type: ignore[attr-defined]
            if type(item).__name__ == "BadFrame":
                raise SystemExit(f"benchmark stream decoded a bad frame: {item!r}")
            frames += 1
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=256)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}

    def record(
        name: str, frames: int, seconds: float, base_frames: int, base_seconds: float
    ) -> None:
        if frames != base_frames:
            raise SystemExit(f"{name}: decoded {frames} frames, baseline cut {base_frames}")
        rate = frames / seconds
        base = base_frames / base_seconds
        results[name] = {
            "frames_per_s": round(rate),
            "baseline_per_s": round(base),
            "ratio": round(rate / base, 4),
        }
        print(
            f"{name:18} {frames:6d} frames  {rate:12,.0f} frames/s"
            f"  baseline {base:14,.0f}/s  ratio {rate / base:.4f}"
        )

    print(f"{args.frames} frames per codec, fed in {args.chunk}-byte chunks; best of 3")
    for name, (make, stream, baseline) in streams(args.frames).items():
        seconds, frames = best(lambda m=make, s=stream: bench_stream(m, s, args.chunk))
        base_seconds, base_frames = best(lambda s=stream, b=baseline: b(s))
        record(name, frames, seconds, base_frames, base_seconds)

    responses = [bytes([i % 256, 1, 2, 3]) + b"\x90\x00" for i in range(args.frames)]
    seconds, frames = best(lambda: len([pcsc.decode_uid_response(r) for r in responses]))
    base_seconds, base_frames = best(lambda: len([r[:-2] for r in responses]))
    record("pcsc", frames, seconds, base_frames, base_seconds)

    blocks = [
        [i % 40, i % 3, i % 5, i % 2, i % 2, i % 13, 1600, 0, i, 0, i * 2, i % 9000]
        for i in range(args.frames)
    ]
    seconds, frames = best(lambda: len([modbus_elevator.decode_status(b) for b in blocks]))
    base_seconds, base_frames = best(lambda: len([tuple(b) for b in blocks]))
    record("modbus_elevator", frames, seconds, base_frames, base_seconds)

    texts = item_texts(args.frames)

    def parse_all() -> int:
        return len([itemcodes.parse_item(t, src) for src, t in texts])

    def split_all() -> int:
        return len([t.split() for _, t in texts])

    seconds, frames = best(parse_all)
    base_seconds, base_frames = best(split_all)
    record("itemcodes", frames, seconds, base_frames, base_seconds)

    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
