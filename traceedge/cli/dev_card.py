"""``traceedge sim card`` and ``traceedge diag card``: IC cards through PC/SC (pcscd + vpcd)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from simulators.card_sim import CardSimulator
    from simulators.pcscd import Pcscd

SOCKET_ENV = "PCSCLITE_CSOCK_NAME"


def _until_signal(step: Callable[[], None]) -> None:
    """Call ``step`` (which blocks briefly) over and over until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set():
            step()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _serve_until_signal(on_line: Callable[[str], None]) -> None:
    """Run ``on_line`` for each stdin line (in this thread) until SIGINT or SIGTERM.

    End of input does not stop serving: a simulator started with stdin closed keeps going.
    """
    lines: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            lines.put(line)

    def step() -> None:
        try:
            line = lines.get(timeout=0.1).strip()
        except queue.Empty:
            return
        if line:
            on_line(line)

    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    _until_signal(step)


def _say(text: str) -> None:
    click.echo(text)
    sys.stdout.flush()


@click.command("card")
@click.option("--uid", default=None, help="Put a card with this UID (hex) on the reader at start.")
@click.option(
    "--vpcd-port",
    type=click.IntRange(1, 65535),
    default=35963,
    show_default=True,
    help="vpcd's port for the reader slot (CHANNELID in /etc/reader.conf.d/vpcd).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Host where vpcd runs.")
@click.option(
    "--pcscd",
    "with_pcscd",
    is_flag=True,
    help="Also start a private pcscd with vpcd on --vpcd-port; prints its "
    f"{SOCKET_ENV} for `diag card`.",
)
def sim_card(uid: str | None, vpcd_port: int, host: str, with_pcscd: bool) -> None:
    """A contactless card on vsmartcard's vpcd reader, seen by the real pcscd.

    Prints vpcd://HOST:PORT as the first line (with --pcscd, then
    PCSCLITE_CSOCK_NAME=PATH), then reads commands from stdin, one per line:
    `insert HEX` puts a card on the reader, `remove` takes it away, `unplug`
    drops the link to vpcd once. Each command is answered on stdout
    (`inserted 04A1B2C3`, `removed`). Serves until Ctrl+C or SIGTERM.
    Needs `apt-get install pcscd vsmartcard-vpcd`.

    \b
    Example:
      traceedge sim card --uid 04A1B2C3
      traceedge sim card --pcscd --vpcd-port 36963 --uid 04A1B2C3
    """
    from simulators.card_sim import CardSimulator, parse_uid
    from simulators.pcscd import Pcscd, PcscdUnavailable

    if uid is not None:
        try:
            parse_uid(uid)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--uid") from exc
    with tempfile.TemporaryDirectory(prefix="traceedge-sim-card-") as workdir:
        daemon: Pcscd | None = None
        if with_pcscd:
            try:
                daemon = Pcscd(workdir, vpcd_port=vpcd_port).start()
            except PcscdUnavailable as exc:
                raise click.ClickException(str(exc)) from exc
        try:
            _run_card(CardSimulator(vpcd_port, host=host), uid, host, vpcd_port, daemon)
        finally:
            if daemon is not None:
                daemon.stop()


def _run_card(
    sim: CardSimulator, uid: str | None, host: str, vpcd_port: int, daemon: Pcscd | None
) -> None:
    try:
        _say(f"vpcd://{host}:{vpcd_port}")
        if daemon is not None:
            _say(f"{SOCKET_ENV}={daemon.socket_path}")
        if uid is not None:
            sim.insert(uid)
            _say(f"inserted {sim.uid}")

        def on_line(line: str) -> None:
            cmd, _, arg = line.partition(" ")
            try:
                if cmd == "insert" and arg:
                    sim.insert(arg)
                    _say(f"inserted {sim.uid}")
                elif cmd == "remove":
                    sim.remove()
                    _say("removed")
                elif cmd == "unplug":
                    sim.unplug()
                    _say("unplugged")
                else:
                    click.echo(f"unknown command {line!r} (insert HEX | remove | unplug)", err=True)
            except ValueError as exc:
                click.echo(f"error: {exc}", err=True)

        _serve_until_signal(on_line)
    finally:
        sim.close()


@click.command("card")
@click.option(
    "--reader", default=None, help="Reader name or its beginning (default: the first reader)."
)
@click.option("--once", is_flag=True, help="Read one card's UID and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per line).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0),
    default=10.0,
    show_default=True,
    help="With --once: seconds to wait for pcscd and a card.",
)
@click.option(
    "--pcscd-socket",
    envvar=SOCKET_ENV,
    default=None,
    help=f"pcscd's socket (default: the system's; env {SOCKET_ENV}).",
)
def diag_card(
    reader: str | None, once: bool, as_json: bool, timeout: float, pcscd_socket: str | None
) -> None:
    """Read IC cards on a PC/SC reader: the UID of each card put on it.

    Without --once, prints every card put on or taken off the reader, and when
    pcscd or the reader goes away and comes back, until Ctrl+C.

    \b
    Example:
      traceedge diag card --once --json
      traceedge diag card --reader "Virtual PCD" --json
    """
    if pcscd_socket:
        os.environ[SOCKET_ENV] = pcscd_socket  # read by libpcsclite at its first call
    from drivers.transports.pcsc_errors import NoCard, PcscError
    from drivers.transports.pcsc_reader import CardEvent, CardMonitor, find_reader, read_uid

    if once:
        deadline = time.monotonic() + timeout
        while True:
            try:
                name = find_reader(reader)
                uid = read_uid(name)
                break
            except PcscError as exc:
                if not exc.retry or time.monotonic() >= deadline:
                    if isinstance(exc, NoCard):
                        raise click.ClickException(
                            f"no card on the reader within {timeout:g} s"
                        ) from exc
                    raise click.ClickException(str(exc)) from exc
                time.sleep(0.1)
        if as_json:
            _say(json.dumps({"reader": name, "uid": uid}))
        else:
            _say(f"{uid}  ({name})")
        return

    def show(event: CardEvent) -> None:
        if as_json:
            _say(json.dumps(event.as_dict()))
            return
        detail = event.uid or (str(event.error) if event.error else "")
        _say(f"{event.kind:<9} {detail}  ({event.reader})".rstrip())

    events: queue.Queue[CardEvent] = queue.Queue()

    def step() -> None:
        with contextlib.suppress(queue.Empty):
            show(events.get(timeout=0.1))

    with CardMonitor(reader, on_event=events.put):
        _until_signal(step)


def register_sim(group: click.Group) -> None:
    group.add_command(sim_card)


def register_diag(group: click.Group) -> None:
    group.add_command(diag_card)
