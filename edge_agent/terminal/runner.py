"""Running a Linux terminal as a program: the operator's stdin lines, SIGTERM and SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from edge_agent.terminal.base import TerminalCore


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed by the operator (stdin), read by a daemon thread so that ``quit`` or
    SIGTERM never waits for a line that will not come."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[str | None] = asyncio.Queue(64)

    def reader() -> None:
        for line in sys.stdin:
            asyncio.run_coroutine_threadsafe(q.put(line), loop).result()
        asyncio.run_coroutine_threadsafe(q.put(None), loop).result()

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    while (line := await q.get()) is not None:
        yield line


def run_app(make: Callable[[], TerminalCore[Any]]) -> None:
    """Run the terminal ``make`` gives until ``quit``, the end of stdin, SIGTERM or SIGINT."""

    async def main() -> None:
        term = make()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, term.stopping.set)
        await term.run(stdin_lines())

    asyncio.run(main())
