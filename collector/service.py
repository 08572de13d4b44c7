"""The collector process: batches from the broker → verify → store once → ack → forward."""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collector import licence_use, warehouse
from collector.forwarder import Forwarder
from collector.pushdown import PushDown
from collector.settings import CollectorSettings
from collector.store import Store
from collector.storedb import StoreDb
from collector.stores import describe, open_store
from collector.verify import VerifiedBatch, verify_batch
from hostlib.db import Db
from hostlib.errors import ConfigError, StoreError, WorkerDied
from hostlib.mqttlink import MqttLink
from hostlib.outage import Outage
from hostlib.pidlock import PidLock
from hostlib.queues import put_blocking
from hostlib.registry import Registry
from hostlib.sdnotify import Notifier
from wire import auth, topics
from wire.command import load_private_key
from wire.envelope import WireError
from wire.schemas import BodyValidator, default_validator

if TYPE_CHECKING:
    from collector.api import ApiServer

log = logging.getLogger(__name__)


Verify = Callable[[str, bytes, Registry, BodyValidator, int], VerifiedBatch]

ONE_CLIENT_ID = (
    "another collector runs with this client_id; the broker lets one session per client "
    "id, so the two would knock each other off it (give each process its own client_id)"
)


class Collector:
    def __init__(
        self,
        settings: CollectorSettings,
        store: Store | None = None,
        verify: Verify = verify_batch,
    ) -> None:
        """``verify``: decodes and verifies one batch (:func:`verify_batch` unless given)."""
        self.settings = settings
        self.verify = verify
        # refused before anything is opened: one process per client_id (several processes
        # share one store, each with its own id), the API's port free
        lock_path = settings.data_dir / f"lock-{settings.client_id}"
        self.lock = PidLock(lock_path).acquire(ONE_CLIENT_ID)
        self.api_server: ApiServer | None = None
        try:
            try:
                self.command_key = load_private_key(settings.command_key)
            except WireError as exc:
                raise ConfigError(settings.path, "collector.command_key", exc.detail) from exc
            self.api_server = self._bind_api()
            self.public_server = self._bind_public()
        except BaseException:
            if self.api_server is not None:
                self.api_server.socket.close()
            self.lock.release()
            raise
        try:
            self.store: Store = store or open_store(settings, project_inline=False)
        except BaseException:
            self.lock.release()
            raise
        self.registry = Registry(settings.registry)
        self.validator = default_validator()
        prefix = settings.broker.prefix
        sub = (
            topics.shared_up(settings.group, prefix)
            if settings.shared_subscription
            else topics.all_up(prefix)
        )
        self.queue: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=64)
        # Presence: "up" (retained) once the broker granted our subscriptions, "down" as our
        # last will. An agent that sent batches while no collector was subscribed (the
        # broker drops those) resends them when it sees an "up" (docs/durability.md).
        self.presence_topic = topics.collector_state(settings.client_id, prefix)
        # A clean session: the broker keeps a persistent session in the shared group while
        # it is disconnected and routes its share of the batches into that session's queue
        # (Mosquitto 2.0); a collector that is gone must drop out of the group at once. It
        # loses nothing: a batch that is not acked is resent by its agent.
        self.link = MqttLink(
            settings.broker,
            client_id=settings.client_id,
            on_message=self._on_message,
            subscriptions=(sub, topics.all_site_status(prefix)),
            name="collector",
            clean_session=True,
            on_subscribed=self._announce,
            will=(self.presence_topic, topics.PRESENCE_DOWN),
        )
        self.forwarder = Forwarder(self.store, settings.platform) if settings.platform else None
        self.batches = 0
        self.poisoned = 0  # messages that made a worker fail unexpectedly (quarantined)
        # the stop list and cylinder registry, read from whichever store this collector uses
        self.pushdown_store = StoreDb(settings.store_path, settings.store.url, pool_size=1)
        self.licence_use_every_s = licence_use.EVERY_S
        self._licence_use_at = 0.0
        self.pushdown = PushDown(
            self.pushdown_store,
            self.registry,
            self.command_key,
            lambda topic, payload: self.link.publish(topic, payload, retain=True),
            prefix,
        )
        self.status_refused: dict[str, int] = {}
        # a store locked or full for long: said once, then every few minutes, then its end
        self.commit_outage = Outage(log, "collector: store")
        self.heartbeat_outage = Outage(log, "collector: heartbeat")
        self._started = False
        self._stop = threading.Event()
        self._dead_at_stop: list[str] = []
        self._worker = threading.Thread(target=self._work, name="ingest", daemon=True)
        self._projector = threading.Thread(target=self._project, name="project", daemon=True)

    def _bind_api(self) -> ApiServer | None:
        if not self.settings.api_port:
            return None
        from collector.api import ApiContext, ApiServer, make_app  # FastAPI: only when on

        ctx = ApiContext(
            store_path=self.settings.store_path,
            store_url=self.settings.store.url,
            registry_path=self.settings.registry,
            relay=self.relay,
            dead_workers=self.dead_workers,
            live=self.live,
            audit_key=self.command_key,
            green_s=self.settings.green_s,
            amber_s=self.settings.amber_s,
            archive_dir=self.settings.archive_dir,
        )
        s = self.settings
        return ApiServer(make_app(ctx), f"{s.path}: api", s.api_host, s.api_port, s.api_tls)

    def _bind_public(self) -> ApiServer | None:
        """The public listener ([public]): the shopper's pages and the Digital Link resolver."""
        pub = self.settings.public
        if not pub.port:
            return None
        from collector.api import ApiContext, ApiServer
        from collector.public import make_public_app

        app = make_public_app(
            ApiContext(store_path=self.settings.store_path, store_url=self.settings.store.url),
            pub.rate_per_min,
            pub.burst,
        )
        what = f"{self.settings.path}: public"
        return ApiServer(app, what, pub.host, pub.port, name="public")

    def relay(self) -> bool:
        """Publish what changed in the pushed-down state (a stop or lift just committed) now,
        rather than at the next tick; True when something went out."""
        if not self.link.connected:
            return False
        return self.pushdown.tick() > 0

    def workers(self) -> dict[str, threading.Thread]:
        """The threads this process cannot do without: one dead stops the process."""
        out = {"ingest": self._worker, "project": self._projector, "mqtt": self.link.thread}
        if self.forwarder:
            out["forwarder"] = self.forwarder.thread
        return out

    def dead_workers(self) -> list[str]:
        """Workers that were started and are no longer running; once the process is
        stopping, those that had died before (the others end on purpose)."""
        if not self._started:
            return []
        if self._stop.is_set():
            return self._dead_at_stop
        return sorted(n for n, t in self.workers().items() if not t.is_alive())

    def _request_stop(self) -> None:
        if not self._stop.is_set():
            self._dead_at_stop = self.dead_workers()
            self._stop.set()

    def live(self) -> dict[str, Any]:
        """This process's in-memory counters (``/metrics``; the store keeps the rest):
        batches handled, messages that made it fail, status reports refused by reason,
        its intake queue and links."""
        fw = self.forwarder
        out: dict[str, Any] = {
            "batches": self.batches,
            "poisoned": self.poisoned,
            "status_refused": dict(self.status_refused),
            "queue": self.queue.qsize(),
            "broker_connected": int(self.link.connected),
        }
        if fw is not None:
            out["platform_ok"] = int(not fw.last_error)
        return out

    def _announce(self) -> None:
        """Our subscriptions stand (MQTT thread): tell the agents, retained."""
        self.link.publish(self.presence_topic, topics.PRESENCE_UP, retain=True)

    def _on_message(self, topic: str, payload: bytes) -> None:
        put_blocking(self.queue, (topic, payload), self._stop)

    def start(self) -> None:
        self._started = True
        self._worker.start()
        self._projector.start()
        if self.forwarder:
            self.forwarder.start()
        self.link.start()
        if self.api_server is not None:
            self.api_server.start()
        if self.public_server is not None:
            self.public_server.start()

    def stop(self) -> None:
        self._request_stop()
        self.link.stop()
        self._worker.join(timeout=10)
        self._projector.join(timeout=10)
        if self.forwarder:
            self.forwarder.stop()
        if self.api_server is not None:
            self.api_server.stop()
        if self.public_server is not None:
            self.public_server.stop()
        self.pushdown_store.close()
        self.store.close()
        self.lock.release()

    def _project(self) -> None:
        """Market stock, stop flags and alarms follow the store within a fraction of a
        second, in transactions of their own (see SqliteStore.project_inline)."""
        while not self._stop.is_set():
            try:
                if self.store.project() == 0:
                    self._stop.wait(0.2)
            except StoreError as exc:
                log.warning("collector: projection failed (%s); retrying", exc)
                self._stop.wait(1.0)
            except Exception:  # a bug: the records stay unprojected, tried again
                log.exception("collector: projection failed unexpectedly; retrying")
                self._stop.wait(1.0)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                topic, payload = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.ingest(topic, payload)

    def ingest(self, topic: str, payload: bytes) -> None:
        """:meth:`handle` one message; whatever it raises quarantines that message alone
        (with an alarm) and the next one is taken. Not acked, so a sender that means it
        sends it again."""
        try:
            self.handle(topic, payload)
        except Exception as exc:
            self.poisoned += 1
            detail = f"{topic}: {exc.__class__.__name__}: {exc}"
            log.exception("collector: message on %s failed; quarantined", topic)
            parts = topics.split(topic, self.settings.broker.prefix)
            site = parts[1] if len(parts) == 3 and parts[0] == "edge" else None
            try:
                self.store.quarantine_payload(site, "internal_error", detail, payload, alarm=True)
            except Exception:
                log.exception("collector: cannot even quarantine it")

    def handle(self, topic: str, payload: bytes) -> None:
        """One batch: verify, commit, then ack. No ack if the commit failed."""
        parts = topics.split(topic, self.settings.broker.prefix)
        if len(parts) == 3 and parts[0] == "edge" and parts[2] == "status":
            self._site_status(parts[1], payload)
            return
        site = parts[1] if len(parts) == 3 and parts[0] == "edge" else None
        try:
            if site is None:
                raise WireError("topic", f"unexpected topic {topic!r}")
            vb = self.verify(
                site, payload, self.registry, self.validator, self.settings.max_batch_bytes
            )
        except WireError as exc:
            log.warning("collector: unusable batch on %s: %s", topic, exc)
            try:
                self.store.quarantine_payload(site, exc.reason, exc.detail, payload)
            except StoreError:
                log.exception("collector: cannot even quarantine; the sender will resend")
            return
        while not self._stop.is_set():
            try:
                res = self.store.commit(vb.site, vb.batch_id, vb.good, vb.bad)
                break
            except StoreError as exc:
                self.commit_outage.failed(
                    f"commit failed ({exc}); batch {vb.batch_id} not acked",
                    logging.ERROR,
                    key=str(exc),
                )
                time.sleep(1.0)
        else:
            return
        self.commit_outage.ended()
        self.batches += 1
        if vb.bad:
            log.warning(
                "collector: batch %s from %s: %d records quarantined (%s)",
                vb.batch_id,
                vb.site,
                len(vb.bad),
                sorted({b.reason for b in vb.bad}),
            )
        gw = vb.gateway
        self.link.publish(
            topics.site_ack(vb.site, self.settings.broker.prefix),
            auth.batch_ack(
                vb.site,
                gw.dev,
                vb.batch_id,
                auth.batch_digest(payload),
                res.stored,
                res.duplicates,
                res.bad,
                gw.key,
            ),
        )
        if self.forwarder and res.stored:
            self.forwarder.poke()

    def _site_status(self, site: str, payload: bytes) -> None:
        """A gateway's health report, taken only when sealed with that gateway's key."""
        try:
            msg = auth.parse(payload, auth.T_STATUS, max_bytes=8192)
            gw = self.registry.get(str(msg.get("gw")))
            if gw is None or gw.type != "gateway" or gw.site != site or msg.get("site") != site:
                raise WireError("unknown_gateway", f"{msg.get('gw')!r} is no gateway of {site}")
            if not auth.verify(msg, gw.recent_keys()):
                raise WireError("mac", f"status of {site} does not verify")
            status = {k: v for k, v in msg.items() if k not in ("t", "mac", "site", "gw")}
            self.store.site_status(site, status)
        except WireError as exc:
            self.status_refused[exc.reason] = self.status_refused.get(exc.reason, 0) + 1
            log.warning("collector: ignored status on %s: %s", site, exc)
        except StoreError as exc:
            log.warning("collector: cannot keep the status of %s: %s", site, exc)

    def heartbeat(self) -> None:
        fw = self.forwarder
        self.store.heartbeat(
            self.settings.client_id,
            {
                "at": time.time(),
                "connected": self.link.connected,
                "broker_error": "" if self.link.connected else self.link.last_error,
                "platform_error": fw.last_error if fw else "",
                "queue": self.queue.qsize(),
                "batches": self.batches,
                "status_refused": dict(self.status_refused),
                "poisoned": self.poisoned,
                "dead_workers": self.dead_workers(),
            },
        )

    def _read_then_write(
        self, due: Callable[[Db], object], act: Callable[[Db], object], what: str
    ) -> None:
        """A periodic duty of the loop: ``due`` under a read, ``act`` under a write only when
        ``due`` found something. A store that is down is the heartbeat's to report (tried
        again next time); a bug is logged and tried again next time."""
        try:
            with self.pushdown_store.read() as db:
                found = due(db)
            if found:
                with self.pushdown_store.write() as db:
                    act(db)
        except StoreError:
            pass
        except Exception:
            log.exception("collector: %s failed", what)

    def run_forever(self, notifier: Notifier | None = None) -> None:
        """Run until SIGTERM/SIGINT or a worker dies. ``notifier`` (systemd's, from the
        environment, unless given) hears READY once started, WATCHDOG every second while
        every worker lives, and STOPPING."""
        notifier = notifier or Notifier()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._request_stop())
        self.start()
        s = self.settings
        log.info("collector %s: store %s, registry %s", s.client_id, describe(s), s.registry)
        notifier.ready(f"collector {s.client_id}: running")
        dead: list[str] = []
        try:
            while not self._stop.wait(1.0):
                try:
                    self.heartbeat()
                    self.heartbeat_outage.ended()
                except StoreError as exc:  # a store locked for long: said next time
                    self.heartbeat_outage.failed(f"cannot write the heartbeat: {exc}")
                dead = self.dead_workers()
                if dead:  # said by the heartbeat above and /healthz; now exit for a restart
                    log.critical("collector: worker(s) %s died; stopping", ", ".join(dead))
                    break
                notifier.watchdog()
                if self.link.connected:
                    try:
                        self.pushdown.tick()
                    except Exception:  # a bug: the next tick tries again
                        log.exception("collector: pushing state down to the sites failed")
                # a read each second; a write only when a count was closed
                self._read_then_write(
                    warehouse.pending_stocktakes,
                    warehouse.check_stocktakes,
                    "checking warehouse stocktakes",
                )
                if time.monotonic() >= self._licence_use_at:
                    # debounced: a busy day pushes a licence's use elsewhere once a period
                    self._licence_use_at = time.monotonic() + self.licence_use_every_s
                    self._read_then_write(
                        licence_use.changed, licence_use.refresh, "summing licence use"
                    )
        finally:
            notifier.stopping(f"collector {s.client_id}: stopping")
            self.stop()
            notifier.close()
        if dead:
            raise WorkerDied(f"collector {self.settings.client_id}", dead)
