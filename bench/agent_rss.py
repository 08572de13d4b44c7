"""Peak RSS of a running edge agent with N records buffered (default 1,000,000).

The outbox is filled directly (realistic record bytes; identities made unique), then the
agent runs with its uplink connected to a broker where no collector answers, so its window
of batches stays full and is resent: the worst case for memory. RSS of the agent process
is sampled for ``--seconds``. Last line: one JSON object.

    python bench/agent_rss.py --records 1000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from benchlib import SITE, emit, make_devices, make_records

from edge_agent.outbox import Incoming, Outbox
from traceedge.brokers import start_broker
from traceedge.launch import Role, agent_config
from traceedge.provision import site_trust


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        root = Path(tmp)
        registry = root / "devices.json"
        devices = make_devices(registry)
        trust = site_trust(root, registry, SITE)
        sample = make_records(devices, 10_000)
        print(f"filling the outbox with {args.records} records ...", file=sys.stderr)
        ob = Outbox(root / "agent" / "outbox.sqlite", 10**12)
        chunk = []
        for i in range(args.records):
            d, _, kind, raw = sample[i % len(sample)]
            chunk.append(Incoming(f"{d.dev}-{i % 97}", i + 1, kind, raw))
            if len(chunk) == 10_000:
                ob.add_many(chunk)
                chunk = []
                if i % 200_000 < 10_000:
                    print(f"  {i + 1}", file=sys.stderr)
        if chunk:
            ob.add_many(chunk)
        depth, nbytes, _ = ob.depth()
        ob.close()
        broker = start_broker("mosquitto", root / "broker")
        acfg = agent_config(
            root / "a.toml",
            SITE,
            root / "agent",
            broker.port,
            broker.port,
            devices=trust.agent_devices,
            identity=trust.identity,
            command_key=trust.command_pub,
            agent={"outbox_max_bytes": 10**12},
        )
        agent = Role("agent", acfg, root / "agent.log").start()
        assert agent.proc is not None
        proc = psutil.Process(agent.proc.pid)
        peak = 0
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < args.seconds:
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.1)
        finally:
            agent.stop()
            broker.stop()
        emit(
            {
                "records_buffered": depth,
                "outbox_bytes": nbytes,
                "peak_rss_mb": round(peak / 2**20, 1),
                "target_mb": 100,
            }
        )


if __name__ == "__main__":
    main()
