"""A tiny test runner for firmware test modules under MicroPython (no pytest there).

Runs every ``test_*`` function of a module in name order, prints ``PASS`` / ``FAIL``
lines and ``RESULT <module> <n> passed, <m> failed``.
"""

import sys


def run(modname: str) -> None:
    mod = __import__(modname)
    names = sorted(n for n in dir(mod) if n.startswith("test_"))
    passed = 0
    failed = 0
    for n in names:
        try:
            getattr(mod, n)()
        except Exception as exc:
            failed += 1
            print("FAIL", modname, n, repr(exc))
            sys.print_exception(exc)
        else:
            passed += 1
            print("PASS", modname, n)
    print("RESULT", modname, passed, "passed,", failed, "failed")
