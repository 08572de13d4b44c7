"""The stall terminal's configuration, read once from its TOML file into frozen objects.

The device identity (id, keys, broker credentials) is the file ``traceedge device provision
--type market-scale`` wrote, named by ``[terminal] identity``; the broker's address may be
overridden in ``[broker]`` (its user and password come from the identity when not given).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drivers.transports.scales import PROTOCOLS
from hostlib.config import MAX_WAIT_S, Section, load_toml, rel_path
from hostlib.errors import ConfigError
from hostlib.mqttlink import BrokerSettings
from hostlib.registry import Device
from wire.envelope import WireError, check_dev
from wire.settlement import PAY
from wire.tracecode import CST_OFFSET_MIN

PRINTER_KINDS = ("file", "device", "serial")


@dataclass(frozen=True)
class Goods:
    key: int
    batch_id: str
    goods_code: str
    goods_name: str
    mode: str  # weighed | counted
    seller: str
    price_fen_per_kg: int | None = None  # weighed on a scale that computes no prices
    price_fen_per_piece: int | None = None  # counted

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "batch_id": self.batch_id,
            "goods_code": self.goods_code,
            "goods_name": self.goods_name,
        }
        if self.price_fen_per_piece is not None:
            d["price_fen_per_piece"] = self.price_fen_per_piece
        return d


@dataclass(frozen=True)
class SaleSettings:
    market: str
    market_no: str
    region: str
    terminal: str
    terminal_no: int
    scale_sw: str
    title: str
    trace_url: str
    utc_offset_min: int
    traders: dict[str, str]  # card UID -> trader id
    buyers: dict[str, str]  # card UID -> buyer id
    goods: dict[int, Goods]
    session_s: float = 180.0


@dataclass(frozen=True)
class ScaleSettings:
    port: str
    protocol: str
    unit: str = "kg"
    timeout_s: float = 5.0  # waiting for a stable weight
    probe_s: float = 2.0  # how often an idle scale is asked (its state on the console)
    reconnect_cap_s: float = 2.0


@dataclass(frozen=True)
class PrinterSettings:
    kind: str  # file (append the bytes), device (/dev/usb/lp0), serial (a tty)
    path: str
    baudrate: int = 9600


@dataclass(frozen=True)
class Identity:
    device: Device
    broker: BrokerSettings


class TerminalFiles:
    """What both terminals' settings derive from their identity and data directory."""

    identity: Identity
    data_dir: Path

    @property
    def dev(self) -> str:
        return self.identity.device.dev

    @property
    def log_path(self) -> Path:
        return self.data_dir / "terminal.sqlite"


@dataclass(frozen=True)
class TerminalSettings(TerminalFiles):
    path: str
    data_dir: Path
    identity: Identity
    scale: ScaleSettings
    reader: str | None
    printer: PrinterSettings | None
    sale: SaleSettings
    window: int = 8
    ack_timeout_s: float = 10.0
    log_max_bytes: int = 256 * 1024**2
    receipts_keep_days: int = 90
    extra: dict[str, Any] = field(default_factory=dict)


def load_identity(path: Path) -> Identity:
    """The provisioned device config (``traceedge device provision``): id, keys, link."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "", f"cannot read the device identity: {exc}") from None
    try:
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        dev = d["dev"]
        check_dev(dev)
        key = bytes.fromhex(d["key"])
        keys = tuple((int(s), bytes.fromhex(k)) for s, k in d.get("keys", []))
        link = d.get("link", {})
        if len(key) != 32 or any(len(k) != 32 for _, k in keys):
            raise ValueError("keys must be 64 hex digits")
        broker = BrokerSettings(
            host=str(link.get("host", "127.0.0.1")),
            port=int(link.get("port", 1883)),
            username=link.get("user"),
            password=link.get("password"),
            prefix=str(link.get("prefix", "")),
        )
        device = Device(dev, key, str(d.get("type", "market-scale")), str(d.get("site", "")))
        device = replace(device, keys=keys)
    except (KeyError, TypeError, ValueError, WireError) as exc:
        raise ConfigError(str(path), "", f"not a device identity file: {exc}") from None
    return Identity(device, broker)


def _code(s: Section, key: str, lo: int, hi: int, digits: bool = False) -> str:
    v = s.get(key, str)
    if not lo <= len(v) <= hi or (digits and not v.isdigit()):
        what = "digits" if digits else "characters"
        s.fail(key, f"must be {lo}..{hi} {what}, not {v!r}")
    return v


def _goods(s: Section, items: Any) -> dict[int, Goods]:
    out: dict[int, Goods] = {}
    if not isinstance(items, list) or not items:
        s.fail("goods", "must be a non-empty array of tables ([[settlement.goods]])")
        return out
    for i, item in enumerate(items):
        g = Section(s.path, f"{s.key('goods')}[{i}]", item, s.problems, s.files)
        key = g.bounded("key", int, 1, 99999, "(the number the operator types)")
        mode = g.get("mode", str, "weighed")
        if mode not in ("weighed", "counted"):
            g.fail("mode", "must be weighed or counted")
        per_kg = g.opt("price_fen_per_kg", int)
        per_piece = g.opt("price_fen_per_piece", int)
        if mode == "counted" and per_piece is None:
            g.fail("price_fen_per_piece", "is required for counted goods")
        goods = Goods(
            key=key,
            batch_id=_code(g, "batch_id", 20, 20),
            goods_code=_code(g, "goods_code", 1, 20),
            goods_name=_code(g, "goods_name", 1, 32),
            mode=mode,
            seller=_code(g, "seller", 1, 32),
            price_fen_per_kg=per_kg,
            price_fen_per_piece=per_piece,
        )
        g.finish()
        if key in out:
            g.fail("key", f"goods key {key} given twice")
        out[key] = goods
    return out


def _cards(s: Section, key: str, required: bool) -> dict[str, str]:
    s.used.add(key)
    d = s.data.get(key, None if required else {})
    if not isinstance(d, dict) or (required and not d):
        s.fail(key, "must be a table of card UID (upper-case hex) = id")
        return {}
    out: dict[str, str] = {}
    for uid, who in d.items():
        ok = 8 <= len(uid) <= 20 and all(c in "0123456789ABCDEF" for c in uid)
        if not ok or not isinstance(who, str) or not who:
            s.fail(key, f"bad entry {uid!r} = {who!r}: UID upper-case hex, 8..20 digits")
            continue
        out[uid] = who
    return out


@dataclass(frozen=True)
class Common:
    """What every Linux terminal's config has: ``[terminal]`` and ``[broker]``."""

    data_dir: Path
    identity: Identity
    window: int
    ack_timeout_s: float
    log_max_bytes: int
    receipts_keep_days: int


def load_common(p: str, root: Section) -> Common:
    """``[terminal]`` (data_dir, identity, window, ack_timeout_s, log_max_bytes,
    receipts_keep_days) and the optional ``[broker]`` of a terminal's config."""
    t = root.sub("terminal")
    data_dir = rel_path(p, t.get("data_dir", str))
    ident_path = t.file("identity")
    window = t.bounded("window", int, 8, 1000, "records")
    ack_timeout = t.bounded("ack_timeout_s", float, 10.0, MAX_WAIT_S, "seconds")
    log_max = t.bounded("log_max_bytes", int, 256 * 1024**2, 1024**4, "bytes (1 TiB)")
    keep_days = t.bounded("receipts_keep_days", int, 90, 3650, "days")
    t.finish()
    identity = (
        load_identity(ident_path)
        if ident_path.exists()
        else Identity(Device("X", b"\0" * 32, "market-scale", ""), BrokerSettings())
    )
    if root.has("broker"):
        b = BrokerSettings.parse(root.sub("broker"))
        if b.username is None:
            b = replace(b, username=identity.broker.username, password=identity.broker.password)
        identity = Identity(identity.device, b)
    return Common(data_dir, identity, window, ack_timeout, log_max, keep_days)


def load_terminal(
    path: str | Path, problems: list[ConfigError] | None = None, files: bool = True
) -> TerminalSettings:
    """Read a stall terminal's config file (``problems``, ``files``: see hostlib.config)."""
    p, root = load_toml(path, problems, files)
    c = load_common(p, root)
    sc = root.sub("scale")
    protocol = sc.choice("protocol", str, PROTOCOLS, "cas_ecr")
    scale = ScaleSettings(
        port=sc.get("port", str),
        protocol=protocol,
        unit=sc.get("unit", str, "kg"),
        timeout_s=sc.bounded("timeout_s", float, 5.0, 60.0, "seconds"),
        probe_s=sc.bounded("probe_s", float, 2.0, 60.0, "seconds"),
        reconnect_cap_s=sc.bounded("reconnect_cap_s", float, 2.0, 60.0, "seconds"),
    )
    sc.finish()
    cs = root.sub("cards")
    reader = cs.get("reader", str, "") or None
    cs.finish()
    printer = None
    if root.has("printer"):
        pr = root.sub("printer")
        kind = pr.choice("kind", str, PRINTER_KINDS, "device")
        printer = PrinterSettings(
            kind, str(rel_path(p, pr.get("path", str))), pr.get("baudrate", int, 9600)
        )
        pr.finish()
    s = root.sub("settlement")
    offset = s.get("utc_offset_min", int, CST_OFFSET_MIN)
    if not -720 <= offset <= 840:
        s.fail("utc_offset_min", f"must be -720..840, not {offset}")
    s.used.add("goods")
    market = _code(s, "market", 1, 32)
    sale = SaleSettings(
        market=market,
        market_no=_code(s, "market_no", 6, 6, digits=True),
        region=_code(s, "region", 6, 6, digits=True),
        terminal=_code(s, "terminal", 1, 32),
        terminal_no=s.get("terminal_no", int, 0),
        scale_sw=_code(s, "scale_sw", 1, 32),
        title=s.get("title", str, market),
        trace_url=s.get("trace_url", str, "https://trace.example.cn/t/"),
        utc_offset_min=offset,
        traders=_cards(s, "traders", True),
        buyers=_cards(s, "buyers", False),
        goods=_goods(s, s.data.get("goods")),
        session_s=s.bounded("session_s", float, 180.0, MAX_WAIT_S, "seconds"),
    )
    if not 0 <= sale.terminal_no <= 99:
        s.fail("terminal_no", "must be 0..99")
    if protocol != "cas_ecr":  # the scale computes no prices: the terminal needs one
        for g in sale.goods.values():
            if g.mode == "weighed" and g.price_fen_per_kg is None:
                s.fail(
                    "goods", f"goods {g.key}: price_fen_per_kg is required with a {protocol} scale"
                )
    s.finish()
    root.finish()
    return TerminalSettings(
        path=p,
        data_dir=c.data_dir,
        identity=c.identity,
        scale=scale,
        reader=reader,
        printer=printer,
        sale=sale,
        window=c.window,
        ack_timeout_s=c.ack_timeout_s,
        log_max_bytes=c.log_max_bytes,
        receipts_keep_days=c.receipts_keep_days,
    )


__all__ = [
    "PAY",
    "Common",
    "Goods",
    "SaleSettings",
    "TerminalSettings",
    "load_common",
    "load_identity",
    "load_terminal",
]
