"""Embedded fallback broker (amqtt) for machines without Mosquitto.

amqtt 0.12 speaks MQTT 3.1.1 only and does not implement shared subscriptions: run one
collector on a plain subscription with it (``shared_subscription = false``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from amqtt.broker import Broker


async def _serve(port: int) -> None:
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description="embedded MQTT broker (amqtt)")
    ap.add_argument("--port", type=int, default=1883)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
