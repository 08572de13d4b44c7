"""``make firmware-test``: the firmware suite under the real MicroPython interpreter.

Runs every module of ``tests/firmware/mp`` in a fresh interpreter (Node + WebAssembly),
prints each test's PASS / FAIL line and the cost figures, and ends with one line
``N passed, M failed``. Exit status 1 when anything failed or could not run.

    .venv/bin/python -m tests.firmware.suite [module ...]
"""

from __future__ import annotations

import sys
import time

from tests.firmware import mpy_fw


def main(argv: list[str]) -> int:
    modules = argv or list(mpy_fw.MODULES)
    passed = failed = 0
    t0 = time.monotonic()
    for mod in modules:
        t = time.monotonic()
        try:
            p, f, out = mpy_fw.run_module(mod)
        except mpy_fw.MissingTool as exc:
            print(f"FAIL {mod}: {exc}")
            failed += 1
            continue
        for line in out.splitlines():
            if line.startswith(("PASS ", "FAIL ", "MEASURE ", "power cut", "serial link")):
                print(line)
        if f:
            print(out[-4000:])
        if p + f == 0:
            print(f"FAIL {mod}: did not run\n{out[-4000:]}")
            f = 1
        print(f"-- {mod}: {p} passed, {f} failed in {time.monotonic() - t:.1f} s")
        passed += p
        failed += f
    print(f"firmware suite under MicroPython: {time.monotonic() - t0:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
