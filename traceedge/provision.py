"""Minimal provisioning: a device id and a 256-bit key, the device's config file, and an
entry in the device registry the collector reads."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from hostlib.errors import ConfigError
from hostlib.registry import DEVICE_TYPES, Device, add_devices

TYPE_PREFIX = {
    "cylinder-reader": "CYL",
    "elevator-box": "ELV",
    "market-scale": "MKT",
    "gateway": "GW",
}


def new_device(dev_type: str, site: str, dev_id: str | None = None) -> Device:
    if dev_type not in DEVICE_TYPES:
        raise ConfigError("--type", dev_type, f"unknown device type; one of {DEVICE_TYPES}")
    dev = dev_id or f"{TYPE_PREFIX[dev_type]}-{site}-{secrets.token_hex(3).upper()}"
    return Device(dev=dev, key=secrets.token_bytes(32), type=dev_type, site=site)


def device_config(
    d: Device, broker_host: str, broker_port: int, prefix: str = ""
) -> dict[str, object]:
    """What the terminal stores in its config file (``config.json`` on the board)."""
    return {
        "dev": d.dev,
        "key": d.key.hex(),
        "type": d.type,
        "site": d.site,
        "link": {"host": broker_host, "port": broker_port, "prefix": prefix},
    }


def provision(
    dev_type: str,
    site: str,
    out_dir: Path,
    registry: Path,
    count: int = 1,
    broker_host: str = "127.0.0.1",
    broker_port: int = 1883,
) -> list[tuple[Device, Path]]:
    """Create ``count`` devices, write ``<out_dir>/<dev>.json`` (mode 0600) for each, register."""
    devices = [new_device(dev_type, site) for _ in range(count)]
    add_devices(registry, devices, int(time.time()))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for d in devices:
        path = out_dir / f"{d.dev}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(device_config(d, broker_host, broker_port), fh, indent=1)
        written.append((d, path))
    return written
