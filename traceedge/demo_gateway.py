"""The demo's devices wired to the gateway itself: no MQTT of their own, the agent's sources.

* an RS-485 bus (a real pty) with two terminals on the framed serial link, polled by the
  agent's ``serial_link`` source (:mod:`simulators.slink_sim`);
* an elevator controller answering Modbus TCP (the pymodbus simulator), polled by the
  agent's ``modbus_elevator`` source, which signs ``elevator.status`` / ``elevator.fault``
  records as the gateway-hosted device.

:func:`wire_gateway` provisions them (registry entries, the hosted device's identity file)
and returns the agent's ``[[sources]]`` tables; :meth:`GatewayDevices.start` plugs them in
once the agent runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostlib.registry import Device
from simulators.elevator_sim import CarConfig, CarModel, ElevatorSimulator
from simulators.slink_sim import SerialLinkSim
from traceedge.brokers import free_port
from traceedge.provision import device_config, new_device, write_secret

ELEVATOR_REG = "31103301062015000123"
BUS_ADDRS = (1, 2)


@dataclass
class GatewayDevices:
    """What :func:`wire_gateway` made: devices to register, sources for the agent."""

    bus: SerialLinkSim
    controller: ElevatorSimulator
    bus_devices: list[Device]
    hosted: Device
    controller_port: int
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def devices(self) -> list[Device]:
        return [*self.bus_devices, self.hosted]

    def start(self, records_per_terminal: int) -> None:
        """Plug the bus in (its terminals make ``records_per_terminal`` each) and power
        the controller (its car runs on its own)."""
        self.bus.start()
        self.bus.produce(records_per_terminal)
        self.controller.start_tcp(port=self.controller_port)

    def bus_generated(self) -> int:
        return self.bus.generated()

    def stop(self) -> None:
        self.bus.stop()
        self.controller.stop()


def wire_gateway(workdir: Path, site: str) -> GatewayDevices:
    """Provision the bus terminals and the hosted elevator (the controller will answer on a
    free port from :meth:`GatewayDevices.start` on)."""
    bus_devices = [new_device("cylinder-reader", site) for _ in BUS_ADDRS]
    hosted = new_device("elevator-box", site)
    identity = write_secret(
        workdir / "gateway" / f"{hosted.dev}.json",
        json.dumps(device_config(hosted, "127.0.0.1", 0)).encode(),
    )
    port = workdir / "gateway" / "ttyRS485-0"  # a stable name, as a udev rule gives one
    bus = SerialLinkSim(bus_devices, addrs=list(BUS_ADDRS), link=str(port), resend_after_s=3.0)
    car = CarConfig(floor_time=1.0, door_time=0.5, dwell_time=1.0, idle_time=1.0)
    controller = ElevatorSimulator(CarModel(car, floor=1, runs=1200, auto=True, seed=5))
    controller_port = free_port()
    target = f"tcp://127.0.0.1:{controller_port}"
    sources: list[dict[str, Any]] = [
        {
            "kind": "serial_link",
            "name": "rs485-0",
            "port": str(port),
            "devices": {d.dev: a for d, a in zip(bus_devices, BUS_ADDRS, strict=True)},
        },
        {
            "kind": "modbus_elevator",
            "name": "lift-1",
            "target": target,
            "identity": str(identity),
            "reg": ELEVATOR_REG,
            "floors": [[f, 3000 * (f + 1)] for f in range(-1, 11)],
            "poll_s": 0.5,
            "status_every_ms": 10000,
        },
    ]
    return GatewayDevices(bus, controller, bus_devices, hosted, controller_port, sources)
