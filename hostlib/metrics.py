"""Prometheus metrics: a tiny ``GET /metrics`` endpoint on a background thread, and the
text format written by prometheus_client from a table of :class:`Spec`.

A role describes each number it exports once (name, ``counter`` or ``gauge``, HELP) and
:func:`families` turns a snapshot of its numbers into metric families carrying the role's
constant labels (the agent's ``site``). The port is bound when the server is made, so a port
that cannot be bound stops start-up (:class:`~hostlib.errors.StartupError`) before
:meth:`MetricsServer.start` runs anything.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hostlib.listen import bind_error

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


@dataclass(frozen=True)
class Spec:
    """One exported number: ``key`` in the role's snapshot, ``name`` after the prefix (a
    counter's without ``_total``: the text format adds it), its type and HELP text."""

    key: str
    name: str
    kind: Literal["counter", "gauge"]
    help: str


def family(
    kind: Literal["counter", "gauge"], name: str, text: str, labels: Iterable[str]
) -> CounterMetricFamily | GaugeMetricFamily:
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(name, text, labels=list(labels))


def families(
    prefix: str, specs: Iterable[Spec], values: Mapping[str, float], labels: Mapping[str, str]
) -> Iterator[Metric]:
    """A family per spec whose key ``values`` has, each with one sample labelled ``labels``."""
    for s in specs:
        if s.key in values:
            fam = family(s.kind, f"{prefix}_{s.name}", s.help, labels)
            fam.add_metric(list(labels.values()), float(values[s.key]))
            yield fam


class _Families:
    """What prometheus_client's writer takes: anything with ``collect()``."""

    def __init__(self, items: Iterable[Metric]) -> None:
        self.items = list(items)

    def collect(self) -> Iterable[Metric]:
        return self.items


def exposition(items: Iterable[Metric]) -> bytes:
    """``items`` in the Prometheus text format (0.0.4)."""
    return generate_latest(_Families(items))


class MetricsServer:
    def __init__(self, host: str, port: int, collect: Callable[[], bytes], what: str) -> None:
        """``collect`` makes the body (:func:`exposition`); ``what`` names the setting that
        chose the port, for the error when it is taken."""
        collect_fn = collect

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = collect_fn()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        try:  # IPv4 or IPv6, as ``host`` is
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            server = type("Server", (ThreadingHTTPServer,), {"address_family": family})
            self.server: ThreadingHTTPServer = server((host, port), Handler)
        except OSError as exc:
            raise bind_error(what, host, port, exc) from exc
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serve loop that never ran
            self.server.shutdown()
        self.server.server_close()
