"""Configuration, parsed once at boot into plain objects; a bad file stops the boot with
a message naming the file and the key (``ConfigError``; retrying will not help).

``/config.json`` is written by provisioning (``traceedge device provision``)::

    {"dev": "CYL-S1-3F9A2C", "key": "<64 hex>", "type": "cylinder-reader", "site": "S1",
     "link": {"host": "192.168.4.1", "port": 1883, "prefix": ""}}

A device whose key was rotated (flashed again with the new config) also has
``"keys": [[from_seq, "<64 hex>"], ...]`` in ascending ``from_seq``, the newest being
``key``: see :class:`Keys`.

``link`` may add ``keepalive_s``, ``backoff_min_ms``, ``backoff_max_ms``, ``user``,
``password``, ``wifi`` (``{"ssid", "password"}``), ``ntp`` (host), or say
``{"kind": "serial", "uart": "gateway"}`` for a box wired to its gateway (add
``"bus_addr": 1..254`` on an RS-485 bus shared with other terminals, where the gateway
polls each address; ``rto_ms``, ``silence_ms`` tune the link). ``/app.json``
holds ``app`` (which app), ``hw`` (see ``te.hal``), optional ``log`` / ``health`` /
``sender`` tuning, and the app's own section.
"""

import json

from wire.mac import unhexlify

_TYPING = False
if _TYPING:
    from typing import Any

    from te.fs import FS


class ConfigError(Exception):
    """Bad configuration: fix the file; retrying will not help."""


_DEV_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


class Section:
    """Typed, checked reads from one JSON object; errors name ``file: path.key``."""

    def __init__(self, d: object, where: str) -> None:
        if not isinstance(d, dict):
            raise ConfigError("%s must be an object" % where)
        self.d: "dict[str, Any]" = d
        self.where = where

    def _err(self, key: str, msg: str) -> ConfigError:
        return ConfigError("%s.%s %s" % (self.where, key, msg))

    def has(self, key: str) -> bool:
        return key in self.d

    def text(self, key: str, default: "str | None" = None, lo: int = 1, hi: int = 64) -> str:
        v = self.d.get(key, default)
        if not isinstance(v, str) or not lo <= len(v) <= hi:
            raise self._err(key, "must be a string of %d..%d characters" % (lo, hi))
        return v

    def num(self, key: str, default: "int | None" = None, lo: int = 0,
            hi: int = 1 << 53) -> int:
        v = self.d.get(key, default)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self._err(key, "must be an integer in %d..%d" % (lo, hi))
        return v

    def flag(self, key: str, default: "bool | None" = None) -> bool:
        v = self.d.get(key, default)
        if not isinstance(v, bool):
            raise self._err(key, "must be true or false")
        return v

    def choice(self, key: str, options: "tuple[str, ...]", default: "str | None" = None) -> str:
        v = self.d.get(key, default)
        if v not in options:
            raise self._err(key, "must be one of %s" % ", ".join(options))
        return str(v)

    def sub(self, key: str, required: bool = True) -> "Section":
        v = self.d.get(key)
        if v is None and not required:
            v = {}
        return Section(v, self.where + "." + key)

    def seq(self, key: str, default: "list[Any] | None" = None) -> "list[Any]":
        v = self.d.get(key, default)
        if not isinstance(v, list):
            raise self._err(key, "must be a list")
        return v

    def obj(self, key: str, default: "dict[str, Any] | None" = None) -> "dict[str, Any]":
        v = self.d.get(key, default)
        if not isinstance(v, dict):
            raise self._err(key, "must be an object")
        return v


def load(fs: "FS", path: str) -> Section:
    try:
        with fs.open(path, "rb") as f:
            raw = f.read()
    except OSError:
        raise ConfigError("%s: not found" % path) from None
    try:
        d = json.loads(raw)
    except ValueError as exc:
        raise ConfigError("%s: not JSON (%s)" % (path, exc)) from None
    return Section(d, path + ":")


class Link:
    def __init__(self, s: Section) -> None:
        self.kind = s.choice("kind", ("mqtt", "serial"), "mqtt")
        if self.kind == "serial":
            self.uart = s.text("uart", "gateway")
            self.bus_addr = s.num("bus_addr", 0, 0, 254)
            self.rto_ms = s.num("rto_ms", 250, 20, 10000)
            self.silence_ms = s.num("silence_ms", 3000, 200, 600000)
            self.host = ""
            self.port = 0
        else:
            self.uart = ""
            self.bus_addr = 0
            self.rto_ms = 250
            self.silence_ms = 3000
            self.host = s.text("host", hi=253)
            self.port = s.num("port", 1883, 1, 65535)
        self.prefix = s.text("prefix", "", 0, 64)
        self.keepalive_s = s.num("keepalive_s", 30, 5, 600)
        self.backoff_min_ms = s.num("backoff_min_ms", 500, 50, 60000)
        self.backoff_max_ms = s.num("backoff_max_ms", 15000, self.backoff_min_ms, 600000)
        self.user = s.text("user", "", 0, 64) or None
        self.password = s.text("password", "", 0, 128) or None
        w = s.sub("wifi", False)
        self.wifi_ssid = w.text("ssid", "", 0, 32)
        self.wifi_password = w.text("password", "", 0, 64)
        self.ntp = s.text("ntp", "", 0, 253)


class Keys:
    """The device's keys as ``(from_seq, key)`` pairs, ascending. Record ``seq`` is signed
    with the key of the largest ``from_seq`` <= ``seq`` (the oldest key before the first),
    as the registry checks it; what the agent sends (acks, gate answers, stop lists) is
    verified with ``recent``, the newest two keys, newest first: the agent may still hold
    the previous key while a rotation reaches it."""

    def __init__(self, pairs: "list[tuple[int, bytes]]") -> None:
        self.pairs = pairs
        self.recent = [k for _, k in pairs[-2:]]
        self.recent.reverse()

    def for_seq(self, seq: int) -> bytes:
        key = self.pairs[0][1]
        for from_seq, k in self.pairs:
            if from_seq > seq:
                break
            key = k
        return key


def _hex_key(s: Section, what: str, v: object) -> bytes:
    if isinstance(v, str) and len(v) == 64:
        try:
            return unhexlify(v)
        except ValueError:
            pass
    raise ConfigError("%s.%s must be 64 hex digits" % (s.where, what))


def _keys(s: Section, key: bytes) -> Keys:
    """``keys`` from the config, or the one ``key`` valid from seq 1 (the format before
    rotation, still written for a device never rotated)."""
    if not s.has("keys"):
        return Keys([(1, key)])
    pairs: "list[tuple[int, bytes]]" = []
    for item in s.seq("keys"):
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int)
                or isinstance(item[0], bool) or item[0] < 1
                or (pairs and item[0] <= pairs[-1][0])):
            raise ConfigError("%s.keys must be [from_seq, key] pairs, from_seq ascending from 1"
                              % s.where)
        pairs.append((item[0], _hex_key(s, "keys", item[1])))
    if not pairs or pairs[-1][1] != key:
        raise ConfigError("%s.key must be the newest of keys" % s.where)
    return Keys(pairs)


class Identity:
    """The provisioned identity: ``dev``, ``key`` (bytes, the newest), ``keys``
    (:class:`Keys`), ``type``, ``site``, ``link``."""

    def __init__(self, s: Section) -> None:
        self.dev = s.text("dev", hi=32)
        for ch in self.dev:
            if ch not in _DEV_CHARS:
                raise ConfigError("%s.dev may hold only A-Z a-z 0-9 - _ ." % s.where)
        self.key = _hex_key(s, "key", s.d.get("key"))
        self.keys = _keys(s, self.key)
        self.type = s.text("type")
        self.site = s.text("site")
        self.link = Link(s.sub("link"))


def load_identity(fs: "FS", path: str = "/config.json") -> Identity:
    return Identity(load(fs, path))
