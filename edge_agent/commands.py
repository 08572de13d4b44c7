"""Commands from the central side on ``edge/{site}/cmd``.

* ``{"type": "cylinder_registry", "version": N, "cylinders": [...]}``: a full snapshot for
  the fill gate, applied only when newer than the one held.
* ``{"type": "stop_list", "version": N, "batches": [{"batch_id", "reason", "at"}]}``: batches
  whose trading is stopped. Kept, and relayed *retained* to every market terminal on
  ``t/{dev}/cmd`` (a terminal that connects later still gets it).

Anything else is counted and logged; a bad command never stops the agent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from edge_agent.outbox import Outbox
from edge_agent.registry_cache import RegistryCache
from wire import topics

log = logging.getLogger(__name__)


class Commands:
    def __init__(
        self,
        outbox: Outbox,
        cache: RegistryCache,
        publish: Callable[[str, bytes, bool], bool],
        prefix: str = "",
    ) -> None:
        self.outbox = outbox
        self.cache = cache
        self.publish = publish
        self.prefix = prefix
        self.market_terminals: set[str] = set(
            json.loads(outbox.get_meta("market_terminals") or "[]")
        )
        self.stop_list = outbox.get_meta("stop_list")
        self.rejected = 0

    def on_command(self, topic: str, payload: bytes) -> None:
        try:
            cmd = json.loads(payload)
            kind = cmd["type"]
            if kind == "cylinder_registry":
                cyls = cmd["cylinders"]
                if not isinstance(cyls, list) or not all(
                    isinstance(c, dict) and isinstance(c.get("cyl"), str) for c in cyls
                ):
                    raise ValueError("cylinders must be a list of entries with cyl")
                if self.cache.apply(int(cmd["version"]), cyls):
                    log.info("cylinder registry v%d: %d cylinders", cmd["version"], len(cyls))
            elif kind == "stop_list":
                old = json.loads(self.stop_list or '{"version": 0}')
                if int(cmd["version"]) > int(old["version"]):
                    self.stop_list = json.dumps(cmd)
                    self.outbox.set_meta({"stop_list": self.stop_list})
                    for dev in sorted(self.market_terminals):
                        self._relay(dev)
            else:
                raise ValueError(f"unknown command type {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            self.rejected += 1
            log.warning("commands: rejected a command on %s: %s", topic, exc)

    def _relay(self, dev: str) -> None:
        if self.stop_list:
            self.publish(topics.terminal_cmd(dev, self.prefix), self.stop_list.encode(), True)

    def saw_terminal(self, dev: str, kind: str) -> None:
        """A record came from ``dev``: market terminals get the stop list when first seen."""
        if kind.startswith("market.") and dev not in self.market_terminals:
            self.market_terminals.add(dev)
            self.outbox.set_meta({"market_terminals": json.dumps(sorted(self.market_terminals))})
            self._relay(dev)
