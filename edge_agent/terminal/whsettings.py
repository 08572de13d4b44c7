"""The Linux warehouse terminal's configuration (``traceedge terminal run --app warehouse``).

``[terminal]`` and ``[broker]`` as for the stall terminal (:func:`load_common`; the
identity comes from ``traceedge device provision --type warehouse-terminal``), then:

* ``[reader]`` a UHF door or desk reader on serial (``protocol`` chafon or r2000), asked
  for an inventory every ``period_s``;
* ``[scanner]`` a barcode / QR scanner on serial (lines; ``scan_join_ms``, as the
  handheld's: the lines of one multi-line QR arriving within this gap are one scan);
* ``[warehouse]`` site, operator, ``gate_timeout_s``, ``licence_classes`` and the
  ``[[warehouse.products]]`` and ``[[warehouse.parties]]`` the operator chooses from: the
  same fields as the handheld's ``products`` and ``parties`` (docs/warehouse.md).

At least one of ``[reader]`` and ``[scanner]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.transports.readers import UHF_PROTOCOLS
from drivers.transports.serial_port import BAUD_RATES
from edge_agent.terminal.settings import Identity, TerminalFiles, load_common
from hostlib.config import Section, load_toml
from hostlib.errors import ConfigError
from wire.goods import CONTROLLED_CLASSES, PRODUCT_CLASSES, UNITS

PARTY_FIELDS = ("party", "party_address", "handler", "handler_id", "licence", "use")


@dataclass(frozen=True)
class ReaderSettings:
    port: str
    protocol: str = "chafon"
    period_s: float = 0.3  # one inventory round every period
    timeout_s: float = 1.0  # one round's answer
    address: int | None = None
    reconnect_cap_s: float = 2.0


@dataclass(frozen=True)
class ScannerSettings:
    port: str
    baudrate: int = 9600
    scan_join_ms: int = 150  # lines of one multi-line QR arrive within this gap (0: off)
    reconnect_cap_s: float = 2.0


@dataclass(frozen=True)
class WarehouseSettings(TerminalFiles):
    path: str
    data_dir: Path
    identity: Identity
    reader: ReaderSettings | None
    scanner: ScannerSettings | None
    site: str
    operator: str
    products: dict[int, dict[str, Any]]
    parties: dict[int, dict[str, Any]]
    licence_classes: tuple[str, ...] = CONTROLLED_CLASSES
    gate_timeout_s: float = 5.0
    window: int = 8
    ack_timeout_s: float = 10.0
    log_max_bytes: int = 256 * 1024**2


def _text(s: Section, key: str, hi: int, required: bool = True) -> str:
    v = s.get(key, str) if required else s.get(key, str, "")
    if (required and not v) or len(v) > hi:
        s.fail(key, f"must be 1..{hi} characters, not {v!r}")
    return v


def _table(s: Section, name: str, required: bool) -> list[Section]:
    s.used.add(name)
    items = s.data.get(name, [])
    if not isinstance(items, list) or (required and not items):
        s.fail(name, f"must be a non-empty array of tables ([[warehouse.{name}]])")
        return []
    return [
        Section(s.path, f"{s.key(name)}[{i}]", it, s.problems, s.files)
        for i, it in enumerate(items)
    ]


def _products(s: Section) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for g in _table(s, "products", True):
        key = g.bounded("key", int, 1, 999999, "(the number the operator types)")
        p: dict[str, Any] = {"key": key, "name": _text(g, "name", 64)}
        code = _text(g, "code", 32, False)
        if code:
            p["code"] = code
        cls = g.choice("class", str, PRODUCT_CLASSES)
        unit = g.choice("unit", str, UNITS, "piece")
        p.update({"class": cls, "unit": unit})
        p["amount"] = g.bounded("amount", int, 1, 10**9, unit)
        lot = _text(g, "lot", 32, False)
        if lot:
            p["lot"] = lot
        g.finish()
        if key in out:
            g.fail("key", f"product key {key} given twice")
        out[key] = p
    return out


def _parties(s: Section) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for g in _table(s, "parties", False):
        key = g.bounded("key", int, 1, 999999, "(the number the operator types)")
        p: dict[str, Any] = {"key": key, "party": _text(g, "party", 64)}
        for k in PARTY_FIELDS[1:]:
            v = _text(g, k, 128, False)
            if v:
                p[k] = v
        g.finish()
        if key in out:
            g.fail("key", f"party key {key} given twice")
        out[key] = p
    return out


def load_warehouse(
    path: str | Path, problems: list[ConfigError] | None = None, files: bool = True
) -> WarehouseSettings:
    """Read a warehouse terminal's config file (``problems``, ``files``: see hostlib.config)."""
    p, root = load_toml(path, problems, files)
    c = load_common(p, root)
    reader = None
    if root.has("reader"):
        r = root.sub("reader")
        protocol = r.choice("protocol", str, UHF_PROTOCOLS, "chafon")
        address = r.opt("address", int)
        if address is not None and not 0 <= address <= 255:
            r.fail("address", f"must be 0..255, not {address}")
        reader = ReaderSettings(
            port=r.get("port", str),
            protocol=protocol,
            period_s=r.bounded("period_s", float, 0.3, 60.0, "seconds"),
            timeout_s=r.bounded("timeout_s", float, 1.0, 30.0, "seconds"),
            address=address,
            reconnect_cap_s=r.bounded("reconnect_cap_s", float, 2.0, 60.0, "seconds"),
        )
        r.finish()
    scanner = None
    if root.has("scanner"):
        sc = root.sub("scanner")
        baud = sc.choice("baudrate", int, BAUD_RATES, 9600)
        scanner = ScannerSettings(
            port=sc.get("port", str),
            baudrate=baud,
            scan_join_ms=sc.bounded("scan_join_ms", int, 150, 2000, "ms (0: off)", zero=True),
            reconnect_cap_s=sc.bounded("reconnect_cap_s", float, 2.0, 60.0, "seconds"),
        )
        sc.finish()
    if reader is None and scanner is None:
        root.fail("reader", "a warehouse terminal needs a [reader] or a [scanner] (or both)")
    w = root.sub("warehouse")
    classes = w.get("licence_classes", list, list(CONTROLLED_CLASSES))
    if any(x not in PRODUCT_CLASSES for x in classes):
        w.fail("licence_classes", f"each one of {', '.join(PRODUCT_CLASSES)}")
    out = WarehouseSettings(
        path=p,
        data_dir=c.data_dir,
        identity=c.identity,
        reader=reader,
        scanner=scanner,
        site=_text(w, "site", 32),
        operator=_text(w, "operator", 32),
        products=_products(w),
        parties=_parties(w),
        licence_classes=tuple(str(x) for x in classes),
        gate_timeout_s=w.bounded("gate_timeout_s", float, 5.0, 60.0, "seconds"),
        window=c.window,
        ack_timeout_s=c.ack_timeout_s,
        log_max_bytes=c.log_max_bytes,
    )
    w.finish()
    root.finish()
    return out


def is_warehouse(path: str | Path) -> bool:
    """True when the config file has a ``[warehouse]`` table (``terminal status`` picks the
    loader with it)."""
    _, root = load_toml(path, [], False)
    return root.has("warehouse")
