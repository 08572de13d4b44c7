"""The two shapes of a long-running command's log on stderr (``--log-format``).

``text`` (the default), for a person at a terminal::

    2026-11-26 05:27:44,077 INFO hostlib.mqttlink: collector: connected to 127.0.0.1:1883

``json``, for a log collector (journald, Loki, Elasticsearch): one object per line, the
time in ISO 8601 UTC with milliseconds, and the traceback, when there is one, in ``exc``::

    {"ts": "2026-11-26T05:27:44.077Z", "level": "INFO", "logger": "hostlib.mqttlink",
     "msg": "collector: connected to 127.0.0.1:1883"}
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC)
        out = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


def formatter(name: str) -> logging.Formatter:
    """The formatter for ``--log-format name`` (one of :data:`FORMATS`)."""
    if name == "json":
        return JsonFormatter()
    if name == "text":
        return logging.Formatter(TEXT)
    raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {name!r}")
