"""Simulated hardware for the terminal firmware (never copied to a board).

``install()`` puts ``tesim.machine`` in ``sys.modules`` as ``machine`` *before* the
firmware imports ``te.hal``, so the firmware runs unchanged under the real MicroPython
interpreter (WebAssembly, in Node) against simulated UARTs, SPI, pins, watchdog and RTC.
"""

import sys


def install() -> None:
    from tesim import machine

    sys.modules["machine"] = machine
