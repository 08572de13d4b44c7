"""Provisioning: a device id, a 256-bit key and MQTT credentials, the device's config file,
and an entry in the device registry the collector reads; a site's gateway identity; the
centre's Ed25519 command key pair (the private half for the collectors, the public half
for the agents).

MQTT credentials: the user name is the device id, the password random (192 bits). The
password goes only into the device's own config file (``link.user``/``link.password``,
mode 0600), which the firmware sends in CONNECT and an edge agent copies into ``[local]``;
the registry keeps only its Mosquitto hash. The registry is copied to every collector and
to gateways, so a plain password there would let any holder of a copy log in as any
device; the hash is all ``traceedge broker config`` needs, so a gateway given a registry
slice could write its own broker's password file without ever learning a password.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hostlib.errors import ConfigError
from hostlib.mqttpasswd import hash_password, new_password
from hostlib.registry import DEVICE_TYPES, Device, Registry, add_devices
from wire.command import new_private_key, private_pem, public_pem
from wire.envelope import WireError, check_dev
from wire.topics import check_site

TYPE_PREFIX = {
    "cylinder-reader": "CYL",
    "elevator-box": "ELV",
    "market-scale": "MKT",
    "warehouse-terminal": "WHS",
    "gateway": "GW",
}


def new_device(dev_type: str, site: str, dev_id: str | None = None) -> Device:
    """A new device with a fresh 256-bit key; bad type, site or id refused before anything
    is written (ids are used in topics and file names)."""
    if dev_type not in DEVICE_TYPES:
        raise ConfigError("--type", dev_type, f"unknown device type; one of {DEVICE_TYPES}")
    try:
        check_site(site)
    except ValueError as exc:
        raise ConfigError("--site", site, str(exc)) from None
    dev = dev_id or f"{TYPE_PREFIX[dev_type]}-{site}-{secrets.token_hex(3).upper()}"
    try:
        check_dev(dev)
    except WireError as exc:
        raise ConfigError("device id", dev, exc.detail) from None
    return Device(dev=dev, key=secrets.token_bytes(32), type=dev_type, site=site)


def device_config(
    d: Device,
    broker_host: str,
    broker_port: int,
    prefix: str = "",
    mqtt_password: str | None = None,
) -> dict[str, object]:
    """What the terminal stores in its config file (``config.json`` on the board); with
    ``mqtt_password`` the link logs in as ``d.dev``."""
    link: dict[str, object] = {"host": broker_host, "port": broker_port, "prefix": prefix}
    if mqtt_password is not None:
        link.update(user=d.dev, password=mqtt_password)
    return {"dev": d.dev, "key": d.key.hex(), "type": d.type, "site": d.site, "link": link}


def serial_device_config(d: Device, bus_addr: int = 0) -> dict[str, object]:
    """The config of a terminal wired to its gateway (docs/serial-link.md): no broker, no
    MQTT login; ``bus_addr`` 1..254 on an RS-485 bus, 0 on a point-to-point line."""
    link: dict[str, object] = {"kind": "serial", "uart": "gateway"}
    if bus_addr:
        link["bus_addr"] = bus_addr
    return {"dev": d.dev, "key": d.key.hex(), "type": d.type, "site": d.site, "link": link}


@dataclass(frozen=True)
class SerialPlan:
    """Wired terminals: the gateway's port and, on an RS-485 bus, the first address (the
    devices get ``first_addr``, ``first_addr + 1``, ...); ``first_addr`` 0: one terminal on
    a point-to-point line."""

    port: str
    first_addr: int = 0

    def addresses(self, count: int) -> list[int]:
        if not self.first_addr:
            if count != 1:
                raise ValueError(
                    "a point-to-point serial line has one terminal: --count 1, or give the "
                    "RS-485 bus's first address (--bus-addr) for several"
                )
            return [0]
        if not 1 <= self.first_addr <= 254 or self.first_addr + count - 1 > 254:
            raise ValueError(
                f"bus addresses {self.first_addr}..{self.first_addr + count - 1} do not fit "
                "in 1..254"
            )
        return list(range(self.first_addr, self.first_addr + count))


def sources_table(plan: SerialPlan, devices: list[tuple[Device, int]]) -> str:
    """The agent's ``[[sources]]`` table for these wired terminals (TOML)."""
    name = "serial-" + (plan.port.rsplit("/", 1)[-1] or "port")
    if devices[0][1] == 0:
        devs = f'["{devices[0][0].dev}"]'
    else:
        devs = "{" + ", ".join(f'"{d.dev}" = {a}' for d, a in devices) + "}"
    return (
        "[[sources]]\n"
        f'name = "{name}"\n'
        'kind = "serial_link"\n'
        f"port = {json.dumps(plan.port)}\n"
        f"devices = {devs}\n"
    )


def provision(
    dev_type: str,
    site: str,
    out_dir: Path,
    registry: Path,
    count: int = 1,
    broker_host: str = "127.0.0.1",
    broker_port: int = 1883,
    serial: SerialPlan | None = None,
) -> list[tuple[Device, Path]]:
    """Create ``count`` devices, write ``<out_dir>/<dev>.json`` (mode 0600) for each, register.

    With ``serial`` the devices are wired to the gateway (no MQTT login is made for them)
    and ``<out_dir>/sources-<site>.toml`` holds the agent's ``[[sources]]`` table for them."""
    addrs = serial.addresses(count) if serial is not None else [0] * count
    made: list[tuple[Device, str | None]] = []
    for _ in range(count):
        if serial is not None:
            made.append((new_device(dev_type, site), None))
            continue
        secret = new_password()
        made.append((replace(new_device(dev_type, site), mqtt_hash=hash_password(secret)), secret))
    add_devices(registry, [d for d, _ in made], int(time.time()))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (d, password), addr in zip(made, addrs, strict=True):
        path = out_dir / f"{d.dev}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            cfg = (
                serial_device_config(d, addr)
                if serial is not None
                else device_config(d, broker_host, broker_port, "", password)
            )
            json.dump(cfg, fh, indent=1)
        written.append((d, path))
    if serial is not None:
        table = sources_table(serial, [(d, a) for (d, _), a in zip(made, addrs, strict=True)])
        (out_dir / f"sources-{site}.toml").write_text(table, encoding="utf-8")
    return written


def write_secret(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` readable by its owner only (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def command_keypair(out_dir: Path) -> tuple[Path, Path]:
    """``command.key`` (private, 0600, for the collectors) and ``command.pub`` (for every
    agent) in ``out_dir``; an existing pair is kept, never overwritten."""
    key_path, pub_path = out_dir / "command.key", out_dir / "command.pub"
    if key_path.exists():
        if not pub_path.exists():
            raise ConfigError(str(pub_path), "", "command.key exists without command.pub")
        return key_path, pub_path
    key = new_private_key()
    write_secret(key_path, private_pem(key))
    pub_path.write_bytes(public_pem(key))
    return key_path, pub_path


def site_gateway(registry: Path, site: str, out_dir: Path) -> Path:
    """The identity file of ``site``'s gateway in ``out_dir`` (``<site>-gateway.json``),
    provisioning the gateway when the registry has none for the site yet."""
    path = out_dir / f"{site}-gateway.json"
    if path.exists():
        return path
    known = (
        [d for d in Registry(registry).devices().values() if d.type == "gateway" and d.site == site]
        if registry.exists()
        else []
    )
    if known:
        raise ConfigError(
            str(path), "", f"site {site} has gateway {known[0].dev} but no identity file here"
        )
    gw = new_device("gateway", site)
    add_devices(registry, [gw], int(time.time()))
    write_secret(path, json.dumps(device_config(gw, "127.0.0.1", 0), indent=1).encode())
    return path


@dataclass(frozen=True)
class SiteTrust:
    """What one site's agent and the collectors need to trust each other (tests, demo,
    benchmarks): the gateway's identity, the command key pair, and the agent's own copy of
    the registry (kept current by the collector's signed push-down)."""

    identity: Path
    command_key: Path
    command_pub: Path
    agent_devices: Path


def site_trust(root: Path, registry: Path, site: str) -> SiteTrust:
    """Provision the gateway of ``site`` (if needed) and the command key pair under
    ``root/trust``; copy the registry as the agent's device file. Call it after the
    site's terminals are registered."""
    trust = root / "trust"
    key, pub = command_keypair(trust)
    identity = site_gateway(registry, site, trust)
    agent_devices = trust / f"{site}-devices.json"
    write_secret(agent_devices, registry.read_bytes())
    return SiteTrust(identity, key, pub, agent_devices)
