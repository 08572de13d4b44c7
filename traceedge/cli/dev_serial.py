"""Serial devices on the command line: ``traceedge sim scale|rfid|scanner|serial-link``
serve a simulator on a pty, ``traceedge diag scale|rfid|scanner`` read a live device.

Interfaces other checks rely on:

* ``sim ... --pty`` prints the path to open (the pty, or ``--link``) as the first line of
  stdout, flushed, then serves until SIGINT or SIGTERM (exit status 0).
* ``diag ... --port PATH --once --json`` prints one JSON object on stdout and exits 0;
  on timeout, a missing device or a device error it exits 1 with a one-line message.

Without ``--once``, diag reads until Ctrl-C, survives unplug / replug (reporting both on
stderr) and keeps going after retryable errors (timeouts, corrupt answers).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from drivers.codecs.errors import EncodeError
from drivers.transports import readers, scales
from drivers.transports.errors import DeviceGone, DriverError, PortUnavailable
from drivers.transports.serial_port import (
    LinkState,
    ReconnectPolicy,
    SerialDevice,
    SerialSettings,
)
from simulators.serial_devices import PtyDevice
from traceedge.cli.common import setup_logging, verbose_option

T = TypeVar("T")

REOPEN_EVERY = 1.0
"""diag without --once: seconds between attempts while the port does not exist yet."""


# -- sim ----------------------------------------------------------------------------------


def _serve(
    sim: PtyDevice, what: str, every: float = 0.5, tick: Callable[[], None] | None = None
) -> None:
    """Start ``sim``, print its path first, serve until SIGINT / SIGTERM (calling ``tick``
    every ``every`` seconds)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sim.start()
        except OSError as exc:  # e.g. a --link in a folder that does not exist
            where = sim.link or "a pty"
            raise click.ClickException(
                f"cannot serve the {what} on {where}: {exc.strerror}"
            ) from exc
        try:
            click.echo(sim.path)
            sys.stdout.flush()
            click.echo(f"{what} on {sim.path} ({sim.tty}); Ctrl-C or SIGTERM stops", err=True)
            while not stop.wait(every):
                if tick is not None:
                    tick()
        finally:
            sim.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pty_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--link",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also keep a symlink PATH -> the pty and print PATH instead (a stable name).",
    )(f)
    f = click.option(
        "--pty",
        "use_pty",
        is_flag=True,
        default=True,
        help="Serve on a new pseudo-terminal (the default, and for now the only way).",
    )(f)
    return f


@click.command("scale")
@click.option("--protocol", type=click.Choice(scales.PROTOCOLS), default="sics", show_default=True)
@_pty_options
@click.option(
    "--weight",
    type=int,
    default=1250,
    show_default=True,
    help="Gross weight in the scale's resolution (steps of 10^-decimals unit).",
)
@click.option("--decimals", type=click.IntRange(0, 5), default=3, show_default=True)
@click.option("--unit", default="kg", show_default=True)
@click.option("--moving", is_flag=True, help="The load is moving: readings wander, unstable.")
@click.option("--overload", is_flag=True, help="The scale is overloaded.")
@click.option(
    "--unit-price",
    type=click.IntRange(0),
    default=1290,
    show_default=True,
    help="CAS ECR: unit price per unit of weight, in steps of 10^-price-decimals.",
)
@click.option("--price-decimals", type=click.IntRange(0, 4), default=2, show_default=True)
@verbose_option
def sim_scale(
    protocol: str,
    use_pty: bool,
    link: Path | None,
    weight: int,
    decimals: int,
    unit: str,
    moving: bool,
    overload: bool,
    unit_price: int,
    price_decimals: int,
    verbose: int,
) -> None:
    """Serve a simulated scale on a pty; the first line of stdout is the path to open.

    The scale answers like the real one (stable, moving, overloaded); stop it with
    Ctrl-C or SIGTERM.

    \b
    Example:
      traceedge sim scale --protocol sics --pty --weight 123456 --decimals 2
      traceedge sim scale --protocol cas_ecr --pty --unit-price 1290 --moving
    """
    from simulators.scale_sim import SCALES

    setup_logging(verbose)
    sim = SCALES[protocol](
        weight=weight,
        decimals=decimals,
        unit=unit,
        moving=moving,
        overload=overload,
        unit_price=unit_price,
        price_decimals=price_decimals,
        link=link,
    )
    try:
        sim.check()
    except EncodeError as exc:
        raise click.BadParameter(f"{protocol} cannot send this weight: {exc.message}") from exc
    _serve(sim, f"{protocol} scale")


@click.command("rfid")
@click.option(
    "--protocol", type=click.Choice(readers.UHF_PROTOCOLS), default="chafon", show_default=True
)
@_pty_options
@click.option(
    "--tags",
    type=click.IntRange(0, 500),
    default=3,
    show_default=True,
    help="How many tags are in the field.",
)
@click.option("--address", type=click.IntRange(0, 254), help="Reader bus address.")
@verbose_option
def sim_rfid(
    protocol: str, use_pty: bool, link: Path | None, tags: int, address: int | None, verbose: int
) -> None:
    """Serve a simulated UHF RFID reader on a pty with TAGS tags in its field.

    \b
    Example:
      traceedge sim rfid --protocol chafon --pty --tags 30
    """
    from simulators.uhf_sim import READERS

    setup_logging(verbose)
    _serve(READERS[protocol](tags=tags, address=address, link=link), f"{protocol} reader")


@click.command("scanner")
@_pty_options
@click.option(
    "--every",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Seconds between scans; 0: only when triggered (SYN T CR).",
)
@verbose_option
def sim_scanner(use_pty: bool, link: Path | None, every: float, verbose: int) -> None:
    """Serve a simulated barcode scanner on a pty: GS1-128 labels and GS1 Digital
    Link QR codes, every SECONDS and on the serial trigger.

    \b
    Example:
      traceedge sim scanner --pty --every 2
    """
    from simulators.scanner_sim import ScannerSim

    setup_logging(verbose)
    _serve(ScannerSim(every=every, link=link), "barcode scanner")


@click.command("serial-link")
@click.argument(
    "configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_pty_options
@click.option(
    "--bus-addr",
    "addrs",
    type=click.IntRange(1, 254),
    multiple=True,
    help="RS-485 bus address of each terminal, in the order of CONFIGS (omit: one terminal "
    "on a point-to-point link).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.01, 1000),
    default=1.0,
    show_default=True,
    help="Records per second each terminal makes.",
)
@click.option("--count", type=click.IntRange(0), default=0, help="Stop making after this many.")
@verbose_option
def sim_serial_link(
    configs: tuple[Path, ...],
    use_pty: bool,
    link: Path | None,
    addrs: tuple[int, ...],
    rate: float,
    count: int,
    verbose: int,
) -> None:
    """Serve terminals wired to a gateway (the agent's serial_link source) on a pty: signed
    records at RATE each, kept until the agent's sealed ack. CONFIGS are the terminals'
    config files from `traceedge device provision`; the first line of stdout is the path.

    \b
    Example:
      traceedge sim serial-link devices/ELV-S001-7C21D0.json --link /tmp/ttyELV --rate 5
      traceedge sim serial-link a.json b.json --bus-addr 1 --bus-addr 2 --link /tmp/rs485
    """
    from hostlib.registry import Device
    from simulators.slink_sim import SerialLinkSim

    setup_logging(verbose)
    if addrs and len(addrs) != len(configs):
        raise click.BadParameter("give one --bus-addr per terminal config", param_hint="--bus-addr")
    if not addrs and len(configs) != 1:
        raise click.BadParameter("several terminals share a port only on a bus: add --bus-addr")
    devices = []
    for path in configs:
        try:
            c = json.loads(path.read_text())
            keys = tuple((int(f), bytes.fromhex(k)) for f, k in c.get("keys", []))
            devices.append(
                Device(c["dev"], bytes.fromhex(c["key"]), c["type"], c["site"], keys=keys)
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.BadParameter(f"{path}: not a terminal config ({exc!r})") from exc
    sim = SerialLinkSim(devices, addrs=list(addrs) or None, link=str(link) if link else None)
    made = [0]

    def tick() -> None:
        if count and made[0] >= count:
            return
        sim.produce(1)
        made[0] += 1

    _serve(sim, f"{len(devices)} serial-link terminal(s)", every=1.0 / rate, tick=tick)
    st = [t.stats for t in sim.terminals]
    click.echo(
        f"made {sum(s.generated for s in st)}, acknowledged {sum(s.acked for s in st)}, "
        f"still held {sim.pending()}, forged acks {sum(s.forged_acks for s in st)}",
        err=True,
    )


def register_sim(group: click.Group) -> None:
    for cmd in (sim_scale, sim_rfid, sim_scanner, sim_serial_link):
        group.add_command(cmd)


# -- diag ---------------------------------------------------------------------------------


def _on_state(state: LinkState, error: DeviceGone | None) -> None:
    if state is LinkState.GONE:
        click.echo(f"device gone: {error}; waiting for it to come back", err=True)
    elif state is LinkState.OPEN:
        click.echo("device connected", err=True)


def _emit(value: Any, as_json: bool) -> None:
    click.echo(json.dumps(value) if as_json else str(value))
    sys.stdout.flush()


async def _open_waiting(dev: SerialDevice) -> None:
    """Open ``dev``, waiting as long as it takes for a port that does not exist yet."""
    told = False
    while True:
        try:
            await dev.open()
            return
        except PortUnavailable as exc:
            if not exc.retry:
                raise
            if not told:
                click.echo(f"{exc.message}; waiting for the device (Ctrl-C stops)", err=True)
                told = True
        await asyncio.sleep(REOPEN_EVERY)


async def _diagnose(
    dev: SerialDevice,
    read: Callable[[SerialDevice], Awaitable[T]],
    show: Callable[[T], None],
    once: bool,
    interval: float,
) -> None:
    if once:
        async with dev:
            show(await read(dev))
        return
    dev.reconnect = ReconnectPolicy()
    dev.on_state = _on_state
    await _open_waiting(dev)
    try:
        while True:
            try:
                show(await read(dev))
            except DriverError as exc:
                if not exc.retry:
                    raise
                click.echo(str(exc), err=True)
            await asyncio.sleep(interval)
    finally:
        await dev.close()


def _run(
    port: str,
    settings: SerialSettings,
    read: Callable[[SerialDevice], Awaitable[T]],
    show: Callable[[T], None],
    once: bool,
    interval: float,
) -> None:
    dev = SerialDevice(port, settings)
    try:
        asyncio.run(_diagnose(dev, read, show, once, interval))
    except KeyboardInterrupt:
        pass
    except DriverError as exc:
        raise click.ClickException(str(exc)) from exc


def _diag_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--port", required=True, help="Serial device or pty path to open."),
        click.option("--once", is_flag=True, help="Print one reading and exit."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON objects."),
        click.option("--baud", type=int, help="Baud rate (default: the protocol's usual one)."),
        click.option(
            "--timeout",
            type=click.FloatRange(0.01),
            default=2.0,
            show_default=True,
            help="Seconds to wait for an answer.",
        ),
        click.option(
            "--interval",
            type=click.FloatRange(0),
            default=0.5,
            show_default=True,
            help="Seconds between readings (without --once).",
        ),
        verbose_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("scale")
@click.option("--protocol", type=click.Choice(scales.PROTOCOLS), default="sics", show_default=True)
@_diag_options
@click.option("--stable", is_flag=True, help="Wait for a stable weight (SICS: S, not SI).")
@click.option("--prices", is_flag=True, help="CAS ECR: ask for unit price and total (DC2).")
@click.option("--unit", default="kg", show_default=True, help="Toledo 8217: the scale's unit.")
def diag_scale(
    protocol: str,
    port: str,
    once: bool,
    as_json: bool,
    baud: int | None,
    timeout: float,
    interval: float,
    verbose: int,
    stable: bool,
    prices: bool,
    unit: str,
) -> None:
    """Read a scale and print each weight; with --once --json one JSON object with an
    integer weight, its decimals and unit, e.g. {"weight": 123456, "decimals": 2,
    "unit": "kg", "stable": true, "protocol": "sics", ...}.

    \b
    Example:
      traceedge diag scale --protocol sics --port /dev/ttyUSB0 --once --json
      traceedge diag scale --protocol cas_ecr --port /dev/ttyUSB0 --prices
    """
    setup_logging(verbose)

    async def read(dev: SerialDevice) -> scales.ScaleReading:
        return await scales.read_weight(
            dev, protocol, timeout=timeout, stable=stable, prices=prices, unit=unit
        )

    def show(reading: scales.ScaleReading) -> None:
        _emit(reading.to_json() if as_json else reading, as_json)

    settings = _settings(scales.SETTINGS[protocol], baud)
    _run(port, settings, read, show, once, interval)


@click.command("rfid")
@click.option(
    "--protocol", type=click.Choice(readers.UHF_PROTOCOLS), default="chafon", show_default=True
)
@_diag_options
@click.option("--address", type=click.IntRange(0, 255), help="Reader bus address.")
def diag_rfid(
    protocol: str,
    port: str,
    once: bool,
    as_json: bool,
    baud: int | None,
    timeout: float,
    interval: float,
    verbose: int,
    address: int | None,
) -> None:
    """Run inventory rounds on a UHF RFID reader and print the tags in its field;
    with --once --json one object {"protocol": ..., "count": N, "tags": [{"epc": ...,
    "rssi": ...}, ...]}.

    \b
    Example:
      traceedge diag rfid --protocol r2000 --port /dev/ttyUSB0 --once --json
    """
    setup_logging(verbose)

    async def read(dev: SerialDevice) -> list[readers.TagSeen]:
        return await readers.inventory(dev, protocol, timeout=timeout, address=address)

    def show(tags: list[readers.TagSeen]) -> None:
        if as_json:
            doc = {"protocol": protocol, "count": len(tags), "tags": [t.to_json() for t in tags]}
            _emit(doc, True)
            return
        lines = [f"{len(tags)} tags"]
        for t in tags:
            rssi = "" if t.rssi is None else f"  rssi {t.rssi}"
            lines.append(f"  {t.epc.hex().upper()}{rssi}")
        _emit("\n".join(lines), False)

    settings = _settings(readers.SETTINGS[protocol], baud)
    _run(port, settings, read, show, once, interval)


@click.command("scanner")
@_diag_options
@click.option("--trigger", is_flag=True, help="Send the serial trigger (SYN T CR) first.")
def diag_scanner(
    port: str,
    once: bool,
    as_json: bool,
    baud: int | None,
    timeout: float,
    interval: float,
    verbose: int,
    trigger: bool,
) -> None:
    """Print each scan with its GS1 AIs (GTIN, batch, serial, net weight); with --once
    --json the next scan as one object {"symbology": "]C1", "ais": {"01": ...}, ...}.

    \b
    Example:
      traceedge diag scanner --port /dev/ttyACM0 --once --json
    """
    setup_logging(verbose)

    async def read(dev: SerialDevice) -> dict[str, Any]:
        return readers.scan_json(await readers.read_scan(dev, timeout=timeout, trigger=trigger))

    def show(scan: dict[str, Any]) -> None:
        if as_json:
            _emit(scan, True)
        else:
            ais = " ".join(f"({k}){v}" for k, v in (scan["ais"] or {}).items())
            _emit(f"{scan['name']}: {ais or repr(scan['data'])}", False)

    settings = _settings(readers.SETTINGS["scanner"], baud)
    if once or trigger:
        _run(port, settings, read, show, once, interval)
        return

    async def stream(dev: SerialDevice) -> None:
        # not polled: a request drops what came before it, scans would be lost
        async for scan in readers.scans(dev):
            show(readers.scan_json(scan))

    _run(port, settings, stream, lambda _: None, once, interval)


def _settings(base: SerialSettings, baud: int | None) -> SerialSettings:
    try:
        return base.with_baudrate(baud)
    except DriverError as exc:
        raise click.BadParameter(exc.message, param_hint="--baud") from exc


def register_diag(group: click.Group) -> None:
    for cmd in (diag_scale, diag_rfid, diag_scanner):
        group.add_command(cmd)
