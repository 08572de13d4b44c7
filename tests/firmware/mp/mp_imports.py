"""Every firmware module imports under MicroPython (with the simulated ``machine``)."""

import tesim

tesim.install()

MODULES = (
    "te.hal",
    "te.fs",
    "te.state",
    "te.flashlog",
    "te.timekeeper",
    "te.recorder",
    "te.channel",
    "te.sender",
    "te.gate",
    "te.health",
    "te.config",
    "te.mqtt",
    "te.transport",
    "te.mqttlink",
    "te.slink",
    "te.uhf",
    "te.mfrc522",
    "te.scale",
    "te.sics_scale",
    "te.cas_scale",
    "te.keypad",
    "drivers.codecs.receipt",
    "wire.settlement",
    "te.debounce",
    "drivers.codecs.elevator_rules",
    "te.runtime",
    "cylinder",
    "elevator",
    "settlement",
    "tesim.world",
    "tesim.machine",
    "tesim.devices",
    "tesim.mfrc522sim",
    "tesim.memfs",
    "tesim.gateway",
    "tesim.harness",
)


def test_all_modules_import() -> None:
    import sys

    for name in MODULES:
        __import__(name)
        assert name in sys.modules, name
    assert sys.implementation.name == "micropython"


def test_machine_is_the_simulated_one() -> None:
    import machine

    assert machine.__name__ == "tesim.machine"
