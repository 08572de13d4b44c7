"""The source interface, its state, and :class:`SourceSet`: routing the agent's answers.

A source runs its own thread (supervised by the agent like the intake: a dead one stops
the process for its supervisor to start again). Nothing a device sends may kill it: every
bad frame or failed read is counted in its :class:`SourceState` and survived. While its
device is unplugged, silent or restarting, the source says so (``state`` "down" with the
reason) and reconnects by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from wire import topics

log = logging.getLogger(__name__)

STATES = ("starting", "up", "down", "stopped")


class SourceHost(Protocol):
    """What the agent gives a source."""

    @property
    def prefix(self) -> str:
        """The local topic prefix (``topics.terminal_rec(dev, prefix)``)."""
        ...

    def offer(self, topic: str, payload: bytes) -> None:
        """A record message as on ``t/{dev}/rec`` into the intake; blocks while it is full."""
        ...

    def gate(self, topic: str, payload: bytes) -> None:
        """A gate request as on ``t/{dev}/gate``; the answer comes back through deliver()."""
        ...

    def dispatch(self, topic: str, payload: bytes) -> None:
        """A warehouse dispatch request as on ``t/{dev}/dispatch`` (sealed by the terminal,
        checked by the agent's dispatch gate); the answer comes back through deliver()."""
        ...


@dataclass
class SourceState:
    """One source's state for ``agent status`` and ``/metrics``."""

    state: str = "starting"
    since: float = field(default_factory=time.time)
    error: str = ""
    counters: dict[str, int] = field(default_factory=dict)

    def as_dict(self, name: str, kind: str) -> dict[str, Any]:
        return {
            "name": name,
            "kind": kind,
            "state": self.state,
            "since": self.since,
            "error": self.error,
            "counters": dict(self.counters),
        }


class Source(ABC):
    """One device link of the agent's (a serial port, a Modbus controller)."""

    kind: ClassVar[str]

    def __init__(self, name: str, host: SourceHost) -> None:
        self.name = name
        self.host = host
        self._lock = threading.Lock()
        self._state = SourceState()

    @abstractmethod
    def devices(self) -> frozenset[str]:
        """The devices this source speaks for: what the agent answers them comes here."""

    @abstractmethod
    def deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        """An ack, gate answer or command (``retain``: keep it and deliver it again after
        the device reconnects) for one of :meth:`devices`. Must not block."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @property
    @abstractmethod
    def thread(self) -> threading.Thread: ...

    # -- state, for the subclasses and the agent -------------------------------------
    def state(self) -> SourceState:
        """A snapshot (a copy), from any thread."""
        with self._lock:
            s = self._state
            return SourceState(s.state, s.since, s.error, dict(s.counters))

    def set_state(self, state: str, error: str = "") -> None:
        """Enter ``state`` (one of :data:`STATES`) with the reason a person should read."""
        if state not in STATES:
            raise ValueError(f"source state {state!r} is not one of {STATES}")
        with self._lock:
            if state != self._state.state:
                self._state.since = time.time()
            self._state.state = state
            self._state.error = error

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._state.counters[name] = self._state.counters.get(name, 0) + n


def _dev_of(topic: str, prefix: str) -> str | None:
    parts = topics.split(topic, prefix)
    return parts[1] if len(parts) == 3 and parts[0] == "t" else None


class SourceSet:
    """The agent's sources, and the router that sends each answer where its device is."""

    def __init__(self, sources: Iterable[Source], prefix: str) -> None:
        self.sources = list(sources)
        self.prefix = prefix
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two sources are named {', '.join(dup)}")

    def __iter__(self) -> Iterator[Source]:
        return iter(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    def owner(self, dev: str) -> Source | None:
        for s in self.sources:
            if dev in s.devices():
                return s
        return None

    def route(
        self, topic: str, payload: bytes, retain: bool, publish: Callable[[str, bytes, bool], bool]
    ) -> bool:
        """Hand what is for one of the sources' devices to that source; anything else to
        ``publish(topic, payload, retain)`` (the local broker)."""
        dev = _dev_of(topic, self.prefix) if self.sources else None
        src = self.owner(dev) if dev is not None else None
        if src is None:
            return publish(topic, payload, retain)
        src.deliver(topic, payload, retain)
        return True

    def start(self) -> None:
        for s in self.sources:
            s.start()

    def stop(self) -> None:
        for s in self.sources:
            try:
                s.stop()
            except Exception:  # one source's failure to stop must not keep the rest running
                log.exception("source %s: stop failed", s.name)

    def states(self) -> list[dict[str, Any]]:
        return [s.state().as_dict(s.name, s.kind) for s in self.sources]

    def threads(self) -> dict[str, threading.Thread]:
        return {f"source:{s.name}": s.thread for s in self.sources}
