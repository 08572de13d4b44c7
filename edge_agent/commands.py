"""Commands from the centre on ``edge/{site}/cmd``, each signed with the centre's Ed25519
command key (:mod:`wire.command`): applied only when the signature verifies under the
public key this agent holds, the command is for this site (or every site), it has not
expired, and its ``version`` is above the last one applied of its type (kept in the outbox
database, so a replayed older command changes nothing, across restarts too).

* ``cylinder_registry`` ``{"version", "cylinders": [...]}``: a full snapshot for the fill gate.
* ``stop_list`` ``{"version", "batches": [{"batch_id", "reason", "at"}]}``: batches whose
  trading is stopped (a lifted stop is a newer list without it). Kept, and relayed
  *retained* to every market terminal on ``t/{dev}/cmd``, sealed with that terminal's key
  (:func:`wire.auth.stop_list`): terminals need no public-key code.
* ``licences`` ``{"version", "licences": [...]}``: the licences that may be presented at this
  site, and ``recalls`` ``{"version", "lots": [{"lot", "reason", ...}]}``: recalled lots; both
  for the warehouse dispatch gate (:mod:`edge_agent.warehouse`, docs/warehouse.md).
* ``licence_use`` ``{"version", "use": [{"licence", "unit", "elsewhere"}]}``: what each
  licence of this site let leave at its other sites; the dispatch gate adds it to what it
  let leave here (:mod:`collector.licence_use`).
* ``devices`` ``{"version", "devices": {dev: {"type", "keys": [{"from_seq", "wrapped"}],
  "revoked": {...}}}}``: the site's device registry with rotated keys (each wrapped under this
  gateway's key, :func:`wire.auth.wrap_key`) and revocations. Written to the agent's device
  registry file, which the intake and the gate read: a revoked device is refused from its
  revocation point within one push.

Anything else (a bad signature, another site, expired, not newer, malformed) is refused,
counted by reason and logged; a bad command never stops the agent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.outbox import Outbox
from edge_agent.registry_cache import RegistryCache
from edge_agent.warehouse import Warehouse
from hostlib.errors import ConfigError
from hostlib.registry import Device, Registry, write_registry
from wire import auth, topics
from wire.command import load_public_key, verify_command
from wire.envelope import WireError

log = logging.getLogger(__name__)

TYPES = ("cylinder_registry", "stop_list", "devices", "licences", "recalls", "licence_use")


class Commands:
    def __init__(
        self,
        outbox: Outbox,
        cache: RegistryCache,
        publish: Callable[[str, bytes, bool], bool],
        site: str,
        command_key: Ed25519PublicKey,
        registry: Registry,
        identity: Device,
        prefix: str = "",
        warehouse: Warehouse | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.outbox = outbox
        self.cache = cache
        self.publish = publish
        self.site = site
        self.command_key = command_key
        self.registry = registry
        self.identity = identity
        self.prefix = prefix
        self.market_terminals: set[str] = set(
            json.loads(outbox.get_meta("market_terminals") or "[]")
        )
        self.stop_list: dict[str, Any] | None = json.loads(outbox.get_meta("stop_list") or "null")
        self.applied = 0
        self.rejected: dict[str, int] = {}

    def _version(self, kind: str) -> int:
        if kind == "cylinder_registry":
            return self.cache.version
        if kind == "licences" and self.warehouse is not None:
            return self.warehouse.licence_version
        if kind == "recalls" and self.warehouse is not None:
            return self.warehouse.recall_version
        if kind == "licence_use" and self.warehouse is not None:
            return self.warehouse.use_version
        return int(self.outbox.get_meta(f"command_version:{kind}") or 0)

    def _refuse(self, reason: str, detail: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        log.warning("commands: refused a command (%s): %s", reason, detail)

    def on_command(self, topic: str, payload: bytes) -> None:
        try:
            cmd = verify_command(payload, self.command_key, self.site, int(time.time() * 1000))
        except WireError as exc:
            self._refuse(exc.reason, exc.detail)
            return
        kind, version = str(cmd["type"]), int(cmd["version"])  # type: ignore[call-overload]
        if kind not in TYPES:
            self._refuse("type", f"unknown command type {kind!r}")
            return
        if version <= self._version(kind):
            return  # already applied (republished, or a replay): nothing to do
        try:
            if kind == "cylinder_registry":
                self._registry(cmd, version)
            elif kind == "stop_list":
                self._stop_list(cmd, version)
            elif kind in ("licences", "recalls"):
                self._warehouse(kind, cmd, version)
            elif kind == "licence_use":
                self._licence_use(cmd, version)
            else:
                self._devices(cmd, version)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            self._refuse("malformed", f"{kind} v{version}: {exc}")
            return
        self.applied += 1

    def _registry(self, cmd: dict[str, object], version: int) -> None:
        cyls = cmd["cylinders"]
        if not isinstance(cyls, list) or not all(
            isinstance(c, dict) and isinstance(c.get("cyl"), str) for c in cyls
        ):
            raise ValueError("cylinders must be a list of entries with cyl")
        if self.cache.apply(version, cyls):
            log.info("cylinder registry v%d: %d cylinders", version, len(cyls))

    def _warehouse(self, kind: str, cmd: dict[str, object], version: int) -> None:
        if self.warehouse is None:
            raise ValueError("this agent keeps no warehouse")
        key, field = ("licences", "licence") if kind == "licences" else ("lots", "lot")
        entries = cmd[key]
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get(field), str) for e in entries
        ):
            raise ValueError(f"{key} must be a list of entries with {field}")
        apply = (
            self.warehouse.apply_licences if kind == "licences" else self.warehouse.apply_recalls
        )
        if apply(version, entries):
            log.info("%s v%d: %d entries", kind, version, len(entries))

    def _licence_use(self, cmd: dict[str, object], version: int) -> None:
        if self.warehouse is None:
            raise ValueError("this agent keeps no warehouse")
        entries = cmd["use"]
        if not isinstance(entries, list) or not all(
            isinstance(e, dict)
            and isinstance(e.get("licence"), str)
            and isinstance(e.get("unit"), str)
            for e in entries
        ):
            raise ValueError("use must be a list of entries with licence, unit, elsewhere")
        if self.warehouse.apply_use(version, entries):
            log.info("licence use elsewhere v%d: %d licences", version, len(entries))

    def _stop_list(self, cmd: dict[str, object], version: int) -> None:
        batches = cmd["batches"]
        if not isinstance(batches, list):
            raise ValueError("batches must be a list")
        self.stop_list = {"version": version, "batches": batches}
        self.outbox.set_meta(
            {"stop_list": json.dumps(self.stop_list), "command_version:stop_list": str(version)}
        )
        log.info("stop list v%d: %d batches stopped", version, len(batches))
        for dev in sorted(self.market_terminals):
            self._relay(dev)

    def _devices(self, cmd: dict[str, object], version: int) -> None:
        if cmd.get("gw") != self.identity.dev:
            return  # for another gateway of this site: its keys are wrapped for that one
        entries = cmd["devices"]
        if not isinstance(entries, dict):
            raise ValueError("devices must be an object")
        ident = self.identity
        devices: dict[str, dict[str, object]] = {}
        for dev, e in entries.items():
            keys = [
                {
                    "from_seq": int(k["from_seq"]),
                    "key": auth.unwrap_key(
                        str(k["wrapped"]), ident.key, str(dev), int(k["from_seq"])
                    ).hex(),
                }
                for k in e["keys"]
            ]
            keys.sort(key=lambda k: int(k["from_seq"]))  # type: ignore[call-overload]
            entry: dict[str, object] = {
                "type": str(e["type"]),
                "site": self.site,
                "key": keys[-1]["key"],
                "keys": keys,
            }
            if isinstance(e.get("revoked"), dict):
                entry["revoked"] = e["revoked"]
            devices[str(dev)] = entry
        write_registry(self.registry.path, devices, version)
        self.outbox.set_meta({"command_version:devices": str(version)})
        self.registry.reload()
        revoked = sorted(d for d, e in devices.items() if "revoked" in e)
        log.info("device registry v%d: %d devices, revoked %s", version, len(devices), revoked)

    def _relay(self, dev: str) -> None:
        device = self.registry.get(dev)
        if self.stop_list is None or device is None:
            return
        payload = auth.stop_list(
            dev, int(self.stop_list["version"]), list(self.stop_list["batches"]), device.key
        )
        self.publish(topics.terminal_cmd(dev, self.prefix), payload, True)

    def saw_terminal(self, dev: str, kind: str) -> None:
        """A record came from ``dev``: market terminals get the stop list when first seen."""
        if kind.startswith("market.") and dev not in self.market_terminals:
            self.market_terminals.add(dev)
            self.outbox.set_meta({"market_terminals": json.dumps(sorted(self.market_terminals))})
            self._relay(dev)

    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def load_command_key(path: Path) -> Ed25519PublicKey:
    """The centre's public command key; a :class:`~hostlib.errors.ConfigError` if unusable."""
    try:
        return load_public_key(path)
    except WireError as exc:
        raise ConfigError(str(path), "agent.command_key", exc.detail) from exc
