"""A tiny Prometheus text-format endpoint (``GET /metrics``) on a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def render(prefix: str, values: dict[str, float | int]) -> str:
    lines = []
    for name, val in sorted(values.items()):
        lines.append(f"# TYPE {prefix}_{name} gauge")
        lines.append(f"{prefix}_{name} {val}")
    return "\n".join(lines) + "\n"


class MetricsServer:
    def __init__(self, host: str, port: int, collect: Callable[[], str]) -> None:
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

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
