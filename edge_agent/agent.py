"""The edge agent process: local intake → outbox → uplink, plus status and metrics."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import threading
import time
from typing import Any

from edge_agent import metrics
from edge_agent.commands import Commands, load_command_key
from edge_agent.gate import FillGate
from edge_agent.intake import Intake
from edge_agent.outbox import Outbox
from edge_agent.registry_cache import RegistryCache
from edge_agent.settings import AgentSettings
from edge_agent.sources.base import SourceSet
from edge_agent.uplink import Uplink
from edge_agent.warehouse import DispatchGate, Warehouse
from hostlib.backoff import Backoff
from hostlib.errors import ConfigError, WorkerDied
from hostlib.metrics import MetricsServer
from hostlib.mqttlink import MqttLink
from hostlib.pidlock import PidLock
from hostlib.registry import Registry, load_identity
from hostlib.sdnotify import Notifier
from wire import auth, topics
from wire.schemas import default_validator

log = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0
REPORT_EVERY_S = 10.0
REPORTED = (
    "site",
    "updated_at",
    "depth",
    "bytes",
    "max_bytes",
    "oldest_age_s",
    "last_ack_at",
    "intake_per_s",
    "uplink_per_s",
    "alarm_outbox_full",
    "evicted",
    "refused",
    "quarantined",
    "cylinder_registry_version",
    "sources_down",
)


def _whole(v: object) -> object:
    """Status travels sealed, in the canonical encoding, which has no floats."""
    return round(v) if isinstance(v, float) else v


ONE_AGENT = (
    "another agent runs on this outbox; two would send the same records and knock each "
    "other off the central broker (stop it first)"
)


class _SourceHost:
    """What the agent gives its sources: the intake, the fill gate and the dispatch gate, as
    a terminal on the local broker reaches them."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.prefix = agent.settings.local.prefix

    def offer(self, topic: str, payload: bytes) -> None:
        self._agent._on_source_record(topic, payload)

    def gate(self, topic: str, payload: bytes) -> None:
        self._agent.gate.handle(topic, payload)
        self._agent.uplink.poke()  # its decision record: on its way at once

    def dispatch(self, topic: str, payload: bytes) -> None:
        self._agent.dispatch.handle(topic, payload)
        self._agent.uplink.poke()


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        # refused before anything is opened: one agent per data directory, its port free
        self.lock = PidLock(settings.data_dir / "lock").acquire(ONE_AGENT)
        try:
            self.metrics = (
                MetricsServer(
                    settings.metrics_host,
                    settings.metrics_port,
                    lambda: metrics.render(settings.site, self.numbers),
                    f"{settings.path}: agent.metrics_port",
                )
                if settings.metrics_port
                else None
            )
        except BaseException:
            self.lock.release()
            raise
        self.outbox = Outbox(
            settings.outbox_path, settings.outbox_max_bytes, settings.quarantine_max_bytes
        )
        self.registry = registry = Registry(settings.devices)
        self.identity = identity = load_identity(settings.identity)
        if identity.type != "gateway" or identity.site != settings.site:
            raise ConfigError(
                str(settings.identity),
                "",
                f"{identity.dev} is a {identity.type} of site {identity.site}, "
                f"not a gateway of site {settings.site}",
            )
        command_key = load_command_key(settings.command_key)
        self.cache = RegistryCache(self.outbox)
        self.uplink = Uplink(self.outbox, settings.site, settings.uplink, identity)
        self.local = MqttLink(
            settings.local,
            client_id=f"agent-{settings.site}-local",
            on_message=self._on_terminal,
            subscriptions=(
                topics.all_terminal_recs(settings.local.prefix),
                topics.terminal_gate("+", settings.local.prefix),
                topics.terminal_dispatch("+", settings.local.prefix),
            ),
            name="local",
        )
        # answers for a device on one of the agent's own links (serial, Modbus) go there
        self.sources = SourceSet((), settings.local.prefix)
        self.gate = FillGate(
            self.outbox,
            self.cache,
            registry,
            identity,
            settings.site,
            lambda t, p: self._to_device(t, p, False),
            settings.local.prefix,
            settings.utc_offset_minutes,
        )
        self.warehouse = Warehouse(self.outbox)
        self.dispatch = DispatchGate(
            self.outbox,
            self.warehouse,
            registry,
            identity,
            settings.site,
            lambda t, p: self._to_device(t, p, False),
            lambda: self.gate.boot,  # one identity: the fill gate's boot and sequence
            settings.local.prefix,
            settings.utc_offset_minutes,
            settings.licence_classes,
        )
        self.commands = Commands(
            self.outbox,
            self.cache,
            self._to_device,
            settings.site,
            command_key,
            registry,
            identity,
            settings.local.prefix,
            self.warehouse,
        )
        self.intake = Intake(
            self.outbox,
            default_validator(),
            registry,
            ack=lambda t, p: self._to_device(t, p, False),
            prefix=settings.local.prefix,
            maxsize=settings.intake_queue,
            on_stored=self.commands.saw_terminal,
            max_bytes=settings.intake_queue_bytes,
            on_records=self.warehouse.on_records,
        )
        u = settings.uplink
        self.central = MqttLink(
            u.broker,
            client_id=f"agent-{settings.site}-up",
            on_message=self._on_central,
            subscriptions=(
                self.uplink.ack_topic,
                topics.site_cmd(settings.site, u.broker.prefix),
                topics.all_collector_states(u.broker.prefix),
            ),
            backoff=Backoff(u.backoff_initial_s, u.backoff_max_s),
            on_connect=self._on_central_connect,
            on_retained=self._on_central_retained,
            name="uplink",
        )
        self.uplink.attach(self.central.publish, lambda: self.central.connected)
        try:
            self.sources = SourceSet(
                (c.build(_SourceHost(self), settings.data_dir) for c in settings.sources),
                settings.local.prefix,
            )
        except BaseException:
            self.outbox.close()
            if self.metrics:
                self.metrics.stop()
            self.lock.release()
            raise
        self._stop = threading.Event()
        self.started_at = time.time()
        self._rates: list[tuple[float, int, int]] = []
        self._reported_at = 0.0

    def _to_device(self, topic: str, payload: bytes, retain: bool) -> bool:
        """An ack, gate answer or command for a terminal: through the source its device is
        on, else the local broker."""
        return self.sources.route(topic, payload, retain, self._publish_local)

    def _publish_local(self, topic: str, payload: bytes, retain: bool) -> bool:
        return self.local.publish(topic, payload, retain=retain)

    def _on_source_record(self, topic: str, payload: bytes) -> None:
        self.intake.offer(topic, payload)
        self.uplink.poke()

    def _on_terminal(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/gate"):
            self.gate.handle(topic, payload)  # answered at once, offline, from the cache
        elif topic.endswith("/dispatch"):
            self.dispatch.handle(topic, payload)  # the same, from licences and stock held here
        else:
            self.intake.offer(topic, payload)
        self.uplink.poke()

    def _on_central_connect(self) -> None:
        self._reported_at = 0.0  # report health at once after (re)connecting
        self.uplink.on_connect()

    def _on_central(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/ack"):
            self.uplink.on_ack(topic, payload)
        elif topics.is_collector_state(topic, self.settings.uplink.broker.prefix):
            self.uplink.on_collector(payload)
        else:
            self.commands.on_command(topic, payload)

    def _on_central_retained(self, topic: str, payload: bytes) -> None:
        """Sent because we subscribed. A collector's retained "up" was there before our
        subscription, so before everything this connection sent: nothing to resend."""
        if not topics.is_collector_state(topic, self.settings.uplink.broker.prefix):
            self._on_central(topic, payload)

    def start(self) -> None:
        self.intake.start()
        self.uplink.start()
        self.central.start()
        self.local.start()
        self.sources.start()
        if self.metrics:
            self.metrics.start()
        log.info(
            "agent %s: outbox %s (%d records waiting)",
            self.settings.site,
            self.settings.outbox_path,
            self.outbox.depth()[0],
        )

    def stop(self) -> None:
        self._stop.set()
        self.sources.stop()
        self.local.stop()
        self.intake.stop()
        self.uplink.stop()
        self.central.stop()
        if self.metrics:
            self.metrics.stop()
        try:
            self.write_status()
        except sqlite3.OperationalError as exc:
            log.warning("agent: last status not written: %s", exc)
        self.outbox.close()
        self.lock.release()

    def numbers(self) -> dict[str, Any]:
        depth, nbytes, oldest = self.outbox.depth()
        c = self.outbox.counters()
        st = self.uplink.stats
        return {
            **c,
            "depth": depth,
            "bytes": nbytes,
            "max_bytes": self.settings.outbox_max_bytes,
            "oldest_age_s": round(oldest, 3) if oldest is not None else 0,
            "in_flight_batches": len(self.uplink.in_flight),
            "resends": st.resends,
            "collector_resends": st.collector_resends,
            "bad_acks": st.bad_acks,
            "unknown_acks": st.unknown_acks,
            "local_connected": int(self.local.connected),
            "uplink_connected": int(self.central.connected),
            "alarm_outbox_full": int(self.outbox.alarm),
            "intake_queue": self.intake.queue.qsize(),
            "intake_queue_bytes": self.intake.queue.nbytes,
            "cylinder_registry_version": self.cache.version,
            "cylinders_known": len(self.cache.entries),
            "gate_allow": self.gate.decisions["allow"],
            "gate_deny": self.gate.decisions["deny"],
            "gate_errors": self.gate.decisions["error"],
            "gate_refused": self.gate.decisions["refused"],
            "licence_registry_version": self.warehouse.licence_version,
            "licences_known": self.warehouse.licences_known(),
            "recall_list_version": self.warehouse.recall_version,
            "licence_use_version": self.warehouse.use_version,
            "dispatch_allow": self.dispatch.decisions["allow"],
            "dispatch_deny": self.dispatch.decisions["deny"],
            "dispatch_errors": self.dispatch.decisions["error"],
            "dispatch_refused": self.dispatch.decisions["refused"],
            "commands_applied": self.commands.applied,
            "commands_rejected": self.commands.rejected_total(),
            **{f"commands_rejected_{k}": v for k, v in self.commands.rejected.items()},
            "forged_acks": st.forged_acks,
            "registry_problem": int(self.registry.problem is not None),
            "sources": self.sources.states(),
        }

    def write_status(self) -> None:
        n = self.numbers()
        now = time.time()
        self._rates.append((now, int(n["stored"]), int(n["acked_records"])))
        self._rates = [r for r in self._rates if now - r[0] <= 10.0]
        t0, s0, a0 = self._rates[0]
        dt = max(now - t0, 1e-9)
        status = {
            "site": self.settings.site,
            "pid_started_at": self.started_at,
            "updated_at": now,
            "last_ack_at": self.uplink.stats.last_ack_at,
            "intake_per_s": round((n["stored"] - s0) / dt, 1) if len(self._rates) > 1 else 0.0,
            "uplink_per_s": round((n["acked_records"] - a0) / dt, 1)
            if len(self._rates) > 1
            else 0.0,
            "uplink_error": self.central.last_error if not self.central.connected else "",
            "waiting_for_db": self.intake.waiting_for_db,
            **n,
            # its devices' links (serial, Modbus) that are not up: the centre alerts on it
            "sources_down": sum(1 for st in n["sources"] if st["state"] != "up"),
        }
        self.outbox.set_meta({"status": json.dumps(status)})
        if now - self._reported_at >= REPORT_EVERY_S and self.central.connected:
            self._reported_at = now
            report = {k: _whole(status[k]) for k in REPORTED if k in status}
            report["sources"] = len(self.sources)  # how many links the agent has of its own
            ident = self.identity
            self.central.publish(
                topics.site_status(self.settings.site, self.settings.uplink.broker.prefix),
                auth.status(self.settings.site, ident.dev, report, ident.key),
                qos=0,
                retain=True,
            )

    def workers(self) -> dict[str, threading.Thread]:
        """The threads this process cannot do without: one dead stops the process."""
        return {
            "intake": self.intake.thread,
            "uplink": self.uplink.thread,
            "local-mqtt": self.local.thread,
            "uplink-mqtt": self.central.thread,
            **self.sources.threads(),
        }

    def dead_workers(self) -> list[str]:
        return sorted(n for n, t in self.workers().items() if not t.is_alive())

    def run_forever(self, notifier: Notifier | None = None) -> None:
        """Run until SIGTERM/SIGINT or a worker dies. ``notifier`` (systemd's, from the
        environment, unless given) hears READY once started, WATCHDOG every second while
        every worker lives (and the status is written), and STOPPING."""
        notifier = notifier or Notifier()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        self.start()
        notifier.ready(f"agent {self.settings.site}: running")
        waiting = False
        dead: list[str] = []
        try:
            while not self._stop.wait(STATUS_EVERY_S):
                dead = self.dead_workers()
                if dead:  # exit non-zero, for the supervisor to start a whole process again
                    log.critical("agent: worker(s) %s died; stopping", ", ".join(dead))
                    break
                notifier.watchdog()
                try:
                    self.write_status()
                except sqlite3.OperationalError as exc:  # locked by another process, disk full
                    if not waiting:
                        log.error("agent: cannot write its status (%s); waiting", exc)
                    waiting = True
                    continue
                if waiting:
                    log.info("agent: writes its status again")
                waiting = False
        finally:
            notifier.stopping(f"agent {self.settings.site}: stopping")
            self.stop()
            notifier.close()
        if dead:
            raise WorkerDied(f"agent {self.settings.site}", dead)
