"""A tiny Prometheus text-format endpoint (``GET /metrics``) on a background thread.

The port is bound when the server is made, so a port that cannot be bound stops start-up
(:class:`~hostlib.errors.StartupError`) before :meth:`MetricsServer.start` runs anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hostlib.listen import bind_error


def render(prefix: str, values: dict[str, float | int]) -> str:
    lines = []
    for name, val in sorted(values.items()):
        lines.append(f"# TYPE {prefix}_{name} gauge")
        lines.append(f"{prefix}_{name} {val}")
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, host: str, port: int, collect: Callable[[], str], what: str) -> None:
        """``what`` names the setting that chose the port, for the error when it is taken."""
        collect_fn = collect

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = collect_fn().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
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
