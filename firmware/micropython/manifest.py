# Files every terminal app needs in /lib on the board (MicroPython manifest syntax: the
# same file freezes them into a firmware build with FROZEN_MANIFEST, and
# `traceedge device flash` copies them with mpremote). Paths are relative to this file.
package(
    "te",
    files=[
        "__init__.py",
        "channel.py",
        "config.py",
        "debounce.py",
        "flashlog.py",
        "fs.py",
        "gate.py",
        "hal.py",
        "health.py",
        "mqtt.py",
        "mqttlink.py",
        "net.py",
        "recorder.py",
        "runtime.py",
        "sender.py",
        "slink.py",
        "state.py",
        "timekeeper.py",
        "transport.py",
    ],
    base_path="lib",
)
package(
    "wire",
    files=["__init__.py", "auth.py", "canonical.py", "envelope.py", "mac.py", "topics.py"],
    base_path="../..",
)
package(
    "drivers",
    files=[
        "__init__.py",
        "codecs/__init__.py",
        "codecs/errors.py",
        "codecs/quantities.py",
        "codecs/stream.py",
        "codecs/chafon.py",
    ],
    base_path="../..",
)
