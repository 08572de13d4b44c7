"""Body validations per second: compiled fastjsonschema vs the jsonschema library.

Both validate the same generated bodies (every kind, in the fleet's mix) in the same run, so
the ratio does not depend on how fast this machine is. ``jsonschema`` gets a pre-built
``Draft7Validator`` per kind, the fair comparison. Also reported: ``BodyValidator.validate``,
the collector's call (kind lookup, error mapping and the float scan on top of fastjsonschema).

Prints human lines, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastjsonschema
import jsonschema

from simulators.records import KIND_MIX_BY_FAMILY, make_body, pick_kind
from wire.schemas import BodyValidator


def _bodies(n: int, seed: int) -> list[tuple[str, dict[str, object]]]:
    rng = random.Random(seed)
    families = list(KIND_MIX_BY_FAMILY)
    out = []
    for i in range(n):
        family = families[i % len(families)]
        kind = pick_kind(family, rng)
        out.append((kind, make_body(kind, rng, f"DEV-{i % 50:04d}", i + 1, f"S{i % 4}")))
    return out


def _rate(run: Callable[[], None], count: int, min_seconds: float) -> float:
    """Validations per second: best of repeated passes lasting at least ``min_seconds``."""
    run()  # warm up
    best = 0.0
    deadline = time.perf_counter() + min_seconds
    while True:
        t0 = time.perf_counter()
        run()
        best = max(best, count / (time.perf_counter() - t0))
        if time.perf_counter() > deadline:
            return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bodies", type=int, default=3000, help="distinct generated bodies")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum time per contender")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    validator = BodyValidator()
    fast = {k: fastjsonschema.compile(s) for k, s in validator.schemas.items()}
    slow = {k: jsonschema.Draft7Validator(s) for k, s in validator.schemas.items()}
    bodies = _bodies(args.bodies, args.seed)
    for kind, body in bodies:  # all valid, by both
        fast[kind](body)
        slow[kind].validate(body)

    def run_fast() -> None:
        for kind, body in bodies:
            fast[kind](body)

    def run_slow() -> None:
        for kind, body in bodies:
            slow[kind].validate(body)

    def run_body_validator() -> None:
        for kind, body in bodies:
            validator.validate(kind, body)

    n = len(bodies)
    kinds = sorted({k for k, _ in bodies})
    size = sum(len(json.dumps(b, ensure_ascii=False).encode()) for _, b in bodies) / n
    print(f"{n} generated bodies, {len(kinds)} kinds, mean {size:.0f} bytes of JSON each")
    fast_rate = _rate(run_fast, n, args.seconds)
    print(f"fastjsonschema (compiled):         {fast_rate:12,.0f} validations/s")
    slow_rate = _rate(run_slow, n, args.seconds)
    print(f"jsonschema Draft7Validator:        {slow_rate:12,.0f} validations/s")
    bv_rate = _rate(run_body_validator, n, args.seconds)
    print(f"BodyValidator.validate (+checks):  {bv_rate:12,.0f} validations/s")
    print(f"ratio fastjsonschema / jsonschema: {fast_rate / slow_rate:.1f}x")
    print(
        json.dumps(
            {
                "fastjsonschema_per_s": round(fast_rate),
                "jsonschema_per_s": round(slow_rate),
                "ratio": round(fast_rate / slow_rate, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
