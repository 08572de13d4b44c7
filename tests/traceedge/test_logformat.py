"""``--log-format``: the JSON shape (one object a line, UTC time, the traceback in ``exc``)
and the commands that take it, run as an operator runs them."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys

import pytest

from traceedge.logformat import JsonFormatter, formatter


def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("the store is not a store")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("collector.service", logging.ERROR, __file__, 1, msg, args, exc_info)
    rec.created = 1_764_134_864.077  # 2025-11-26 05:27:44.077 UTC
    return rec


def test_one_object_a_line_with_utc_time_and_the_traceback() -> None:
    line = JsonFormatter().format(record("commit failed\n(%s)", "locked", exc=True))
    assert "\n" not in line
    out = json.loads(line)
    assert out["ts"] == "2025-11-26T05:27:44.077Z"
    assert (out["level"], out["logger"]) == ("ERROR", "collector.service")
    assert out["msg"] == "commit failed\n(locked)"
    assert (
        out["exc"].startswith("Traceback") and "ValueError: the store is not a store" in out["exc"]
    )


def test_no_exc_key_without_an_exception_and_text_unicode_kept() -> None:
    out = json.loads(JsonFormatter().format(record("站点 %s", "S001")))
    assert "exc" not in out and out["msg"] == "站点 S001"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        formatter("yaml")


def test_platform_run_logs_json_on_stderr_and_keeps_stdout_empty() -> None:
    cmd = [sys.executable, "-m", "traceedge", "platform", "run", "--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*cmd, "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        first = json.loads(proc.stderr.readline())
        assert first["level"] == "INFO" and re.match(
            r"fake city platform listening on http://127\.0\.0\.1:\d+$", first["msg"]
        ), first
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert out == ""
    rest = [json.loads(line) for line in err.splitlines()]
    assert rest[-1]["msg"] == "fake city platform stopped", rest


def test_every_long_running_command_offers_both_formats() -> None:
    for role in ("agent", "collector", "platform"):
        res = subprocess.run(
            [sys.executable, "-m", "traceedge", role, "run", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        assert "--log-format [text|json]" in res.stdout, res.stdout
