"""Configuration, parsed once at boot into plain objects; a bad file stops the boot with
a message naming the file and the key (``ConfigError``; retrying will not help).

``/config.json`` is written by provisioning (``traceedge device provision``)::

    {"dev": "CYL-S1-3F9A2C", "key": "<64 hex>", "type": "cylinder-reader", "site": "S1",
     "link": {"host": "192.168.4.1", "port": 1883, "prefix": ""}}

``link`` may add ``keepalive_s``, ``backoff_min_ms``, ``backoff_max_ms``, ``user``,
``password``, ``wifi`` (``{"ssid", "password"}``), ``ntp`` (host), or say
``{"kind": "serial", "uart": "gateway"}`` for a box wired to its gateway. ``/app.json``
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
            self.host = ""
            self.port = 0
        else:
            self.uart = ""
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


class Identity:
    """The provisioned identity: ``dev``, ``key`` (bytes), ``type``, ``site``, ``link``."""

    def __init__(self, s: Section) -> None:
        self.dev = s.text("dev", hi=32)
        for ch in self.dev:
            if ch not in _DEV_CHARS:
                raise ConfigError("%s.dev may hold only A-Z a-z 0-9 - _ ." % s.where)
        key = s.text("key", lo=64, hi=64)
        try:
            self.key = unhexlify(key)
        except ValueError:
            raise ConfigError("%s.key must be 64 hex digits" % s.where) from None
        self.type = s.text("type")
        self.site = s.text("site")
        self.link = Link(s.sub("link"))


def load_identity(fs: "FS", path: str = "/config.json") -> Identity:
    return Identity(load(fs, path))
