"""``traceedge sim elevator`` and ``traceedge diag elevator``: the controller over Modbus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from simulators.elevator_sim import ElevatorSimulator


def _quiet_pymodbus(verbose: int) -> None:
    # pymodbus logs every timeout with a frame dump; the CLI reports errors itself.
    level = logging.DEBUG if verbose > 1 else logging.WARNING if verbose else logging.CRITICAL
    logging.getLogger("pymodbus").setLevel(level)


def _say(text: str) -> None:
    click.echo(text)
    sys.stdout.flush()


def _serve_until_signal(on_line: Callable[[str], None]) -> None:
    """Run ``on_line`` for each stdin line (in this thread) until SIGINT or SIGTERM.

    End of input does not stop serving: a simulator started with stdin closed keeps going.
    """
    stop = threading.Event()
    lines: queue.Queue[str] = queue.Queue()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def read_stdin() -> None:
        for line in sys.stdin:
            lines.put(line)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    try:
        while not stop.is_set():
            try:
                line = lines.get(timeout=0.1).strip()
            except queue.Empty:
                continue
            if line:
                on_line(line)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


COMMANDS = (
    "call FLOOR | fault CODE | inject door_open_while_moving|stop_outside_door_zone|overspeed"
    " | clear | power off|on | silence on|off"
)


def _command(sim: ElevatorSimulator, line: str) -> str:
    """Apply one stdin command; the acknowledgement printed on stdout."""
    cmd, _, arg = line.partition(" ")
    arg = arg.strip()
    if cmd == "call":
        sim.call(int(arg))
    elif cmd == "fault":
        sim.set_fault(int(arg))
    elif cmd == "inject":
        sim.inject(arg)
    elif cmd == "clear":
        sim.clear_faults()
    elif cmd == "power" and arg == "off":
        sim.power_off()
    elif cmd == "power" and arg == "on":
        sim.power_on()
    elif cmd == "silence" and arg in ("off", "on"):
        sim.silence(arg == "on")
    else:
        raise ValueError(f"unknown command {line!r} ({COMMANDS})")
    return f"ok {line}"


@click.command("elevator")
@click.option("--tcp", "mode", flag_value="tcp", default=True, help="Serve Modbus TCP (default).")
@click.option("--pty", "mode", flag_value="pty", help="Serve Modbus RTU on a new pty.")
@click.option("--host", default="127.0.0.1", show_default=True, help="TCP address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port (0 picks a free one).",
)
@click.option("--unit", type=click.IntRange(1, 247), default=1, show_default=True)
@click.option("--lowest", type=int, default=-1, show_default=True, help="Lowest floor.")
@click.option("--highest", type=int, default=10, show_default=True, help="Highest floor.")
@click.option(
    "--floor-time",
    type=click.FloatRange(min=0.01),
    default=2.0,
    show_default=True,
    help="Seconds to travel one floor.",
)
@click.option(
    "--auto/--no-auto", default=True, show_default=True, help="Random calls when the car idles."
)
@click.option("--seed", type=int, default=None, help="Seed of the random calls.")
@click.option("-v", "--verbose", count=True, help="pymodbus log output (-v, -vv).")
def sim_elevator(
    mode: str,
    host: str,
    port: int,
    unit: int,
    lowest: int,
    highest: int,
    floor_time: float,
    auto: bool,
    seed: int | None,
    verbose: int,
) -> None:
    """An elevator controller answering Modbus, driven by a simulated car.

    Prints where it serves as the first line (tcp://HOST:PORT, or the pty path
    with --pty), then reads commands from stdin, one per line, each answered
    with `ok COMMAND`: call FLOOR, fault CODE, inject NAME (door_open_while_moving,
    stop_outside_door_zone, overspeed), clear, power off|on, silence on|off.
    Serves until Ctrl+C or SIGTERM.

    \b
    Example:
      traceedge sim elevator --tcp --port 5020
      traceedge sim elevator --pty --floor-time 0.5 --no-auto
    """
    from simulators.elevator_sim import CarConfig, CarModel, ElevatorSimulator

    _quiet_pymodbus(verbose)
    try:
        config = CarConfig(lowest=lowest, highest=highest, floor_time=floor_time)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    model = CarModel(config, floor=max(lowest, min(0, highest)), auto=auto, seed=seed)
    sim = ElevatorSimulator(model, unit=unit)
    try:
        try:
            where = sim.start_tcp(host, port) if mode == "tcp" else sim.start_pty()
        except (OSError, RuntimeError) as exc:
            raise click.ClickException(f"cannot serve Modbus {mode}: {exc}") from exc
        _say(where)

        def on_line(line: str) -> None:
            try:
                _say(_command(sim, line))
            except ValueError as exc:
                click.echo(f"error: {exc}", err=True)

        _serve_until_signal(on_line)
    finally:
        sim.stop()


def _text(status: dict[str, object]) -> str:
    yes = {True: "yes", False: "no"}
    return (
        f"floor {status['floor']:>3}  {status['direction']:<4}  doors {status['door']:<10}"
        f"  zone {yes[bool(status['door_zone'])]:<3}  running {yes[bool(status['running'])]:<3}"
        f"  {status['speed_mm_s']} mm/s  fault {status['fault_code']} ({status['fault']})"
        f"  runs {status['runs']}  door cycles {status['door_cycles']}"
        f"  run hours {status['run_hours']}"
    )


@click.command("elevator")
@click.option(
    "--port",
    "target",
    required=True,
    help="tcp://HOST:PORT, a serial device (/dev/ttyUSB0) or rtu:///dev/X?baudrate=9600.",
)
@click.option("--unit", type=click.IntRange(0, 247), default=1, show_default=True)
@click.option("--once", is_flag=True, help="Read the status once and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per line).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between reads.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
@click.option("-v", "--verbose", count=True, help="pymodbus log output (-v, -vv).")
def diag_elevator(
    target: str,
    unit: int,
    once: bool,
    as_json: bool,
    interval: float,
    timeout: float,
    verbose: int,
) -> None:
    """Read an elevator controller's status over Modbus TCP or RTU.

    Prints the decoded status (floor, direction, doors, door zone, running,
    fault code and text, speed, counters) every --interval seconds; errors go
    to stderr and polling goes on, reconnecting with a capped backoff.

    \b
    Example:
      traceedge diag elevator --port tcp://127.0.0.1:5020 --once --json
      traceedge diag elevator --port /dev/ttyUSB0 --unit 3
    """
    from drivers.transports.modbus_poll import ElevatorPoller, ModbusError, Target

    _quiet_pymodbus(verbose)
    try:
        parsed = Target.parse(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--port") from exc

    def show(status: dict[str, object]) -> None:
        _say(json.dumps(status) if as_json else _text(status))

    async def read_once() -> None:
        async with ElevatorPoller(parsed, unit=unit, timeout=timeout) as poller:
            show(await poller.read_status())

    async def read_forever() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        async with ElevatorPoller(parsed, unit=unit, timeout=timeout) as poller:
            with contextlib.suppress(asyncio.CancelledError):
                async for poll in poller.poll(interval):
                    if poll.status is not None:
                        show(poll.status)
                    else:
                        click.echo(f"error: {poll.error}", err=True)

    try:
        asyncio.run(read_once() if once else read_forever())
    except ModbusError as exc:
        raise click.ClickException(str(exc)) from exc


def register_sim(group: click.Group) -> None:
    group.add_command(sim_elevator)


def register_diag(group: click.Group) -> None:
    group.add_command(diag_elevator)
