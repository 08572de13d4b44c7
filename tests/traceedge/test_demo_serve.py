"""``traceedge demo --serve``: after the run the chain stays up; the console and the shopper's
page it prints answer, the token it prints signs in; SIGTERM stops everything."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.conftest import require_mosquitto, wait_until


def test_demo_serve_prints_working_addresses(tmp_path: Path) -> None:
    require_mosquitto()
    proc = subprocess.Popen(
        [sys.executable, "-m", "traceedge", "demo", "--records", "300", "--broker", "mosquitto",
         "--workdir", str(tmp_path / "demo"), "--serve"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        wait_until(lambda: any("Ctrl-C stops it" in x for x in lines), 240, "the demo to serve")
        text = "".join(lines)
        console = re.search(r"console \(regulator\):\s+(\S+)", text)
        token = re.search(r"admin token: (te_\S+)", text)
        page = re.search(r"shopper's trace page: (\S+)", text)
        assert console and token and page, text[-2000:]
        assert httpx.get(console.group(1), follow_redirects=False).status_code in (303, 401)
        with httpx.Client(cookies={"te_token": token.group(1)}) as signed_in:
            signed = signed_in.get(console.group(1))
        assert signed.status_code == 200 and "DEMO01" in signed.text
        shopper = httpx.get(page.group(1))
        assert shopper.status_code == 200 and "追溯码" in shopper.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    t.join(10)
    assert proc.stderr is not None
    proc.stderr.close()
    assert "Traceback" not in "".join(lines)
