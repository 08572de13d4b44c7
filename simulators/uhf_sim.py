"""UHF RFID readers on a pty with a population of tags in the field.

``sim.tags`` is the list of :class:`Tag` (EPC, RSSI, antenna) currently in range;
replace it at any time (``sim.tags = make_tags(30)``, ``sim.tags = []``).

* :class:`ChafonReader` answers inventory (``0x01``) with the EPCs, at most
  ``per_frame`` per frame: every frame but the last has status ``0x03`` ("more frames
  follow"), the last ``0x01``; no tag -> status ``0xFB``. Reader information (``0x21``)
  is answered; any other command gets ``0xFE`` (illegal command). Frames with a bad CRC
  are ignored, as real readers do. Addressed commands are answered when sent to the
  reader's address or to the broadcast ``0xFF``.
* :class:`R2000Reader` answers real-time inventory (``0x89``) with one tag frame per tag
  and a summary frame; no tag -> error ``0x36``; any other command -> error ``0x11``.

Set ``sim.fault`` to a status (Chafon) or error code (R2000) to make every inventory
fail with it, e.g. ``0xFA`` (poor communication) or ``0x22`` (antenna missing).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from drivers.codecs import chafon, r2000
from drivers.codecs.stream import BadFrame, StreamDecoder
from simulators.serial_devices import PtyDevice

EPC_PREFIX = bytes.fromhex("E2801160")
NO_TAG_R2000 = 0x36
COMMAND_FAILED_R2000 = 0x11
ILLEGAL_COMMAND_CHAFON = 0xFE


@dataclass(frozen=True)
class Tag:
    epc: bytes
    rssi: int = 0x50
    antenna: int = 0


def make_tags(n: int, seed: int = 7) -> list[Tag]:
    """``n`` distinct 96-bit EPCs (``E2801160`` + 8 bytes), RSSI 0x40-0x5F."""
    rng = random.Random(seed)
    return [
        Tag(EPC_PREFIX + i.to_bytes(2, "big") + rng.randbytes(6), 0x40 + rng.randrange(0x20))
        for i in range(n)
    ]


class UhfReader(PtyDevice):
    kind = "rfid reader"
    protocol = ""
    decoder: StreamDecoder

    def __init__(
        self,
        *,
        tags: int | list[Tag] = 3,
        address: int | None = None,
        link: str | os.PathLike[str] | None = None,
        seed: int = 1,
    ) -> None:
        super().__init__(link=link, seed=seed)
        self.tags: list[Tag] = make_tags(tags, seed) if isinstance(tags, int) else list(tags)
        self.fault: int | None = None
        if address is not None:
            self.address = address
        self.reset()

    def on_bytes(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if isinstance(item, BadFrame):
                self.stats.bad_commands += 1
            else:
                self.stats.commands += 1
                self.command(item)

    def command(self, item: object) -> None:
        raise NotImplementedError


class ChafonReader(UhfReader):
    protocol = "chafon"
    address = 0x00
    per_frame = 8
    info = bytes([0x03, 0x01, 0x09, 0x03, 0x3E, 0x00, 0x1E, 0x0A])

    def reset(self) -> None:
        self.decoder = chafon.CommandDecoder()

    def command(self, item: object) -> None:
        assert isinstance(item, chafon.Command)
        if item.adr not in (self.address, 0xFF):
            return
        if item.cmd == chafon.CMD_INVENTORY:
            self.inventory()
        elif item.cmd == chafon.CMD_READER_INFO:
            self.send(chafon.encode_response(self.address, item.cmd, 0x00, self.info))
        else:
            self.send(chafon.encode_response(self.address, item.cmd, ILLEGAL_COMMAND_CHAFON))

    def inventory(self) -> None:
        if self.fault is not None:
            self.send(chafon.encode_response(self.address, chafon.CMD_INVENTORY, self.fault))
            return
        epcs = [tag.epc for tag in self.tags]
        if not epcs:
            self.send(
                chafon.encode_response(self.address, chafon.CMD_INVENTORY, chafon.STATUS_NO_TAG)
            )
            return
        for i in range(0, len(epcs), self.per_frame):
            last = i + self.per_frame >= len(epcs)
            status = 0x01 if last else chafon.STATUS_MORE
            chunk = epcs[i : i + self.per_frame]
            self.send(chafon.encode_inventory_response(self.address, chunk, status))


class R2000Reader(UhfReader):
    protocol = "r2000"
    address = 0x01

    def reset(self) -> None:
        self.decoder = r2000.CommandDecoder()

    def command(self, item: object) -> None:
        assert isinstance(item, r2000.Frame)
        if item.addr not in (self.address, 0xFF):
            return
        if item.cmd != r2000.CMD_REALTIME_INVENTORY:
            self.send(
                r2000.encode_error(r2000.ErrorReply(self.address, item.cmd, COMMAND_FAILED_R2000))
            )
            return
        tags = list(self.tags)
        if not tags or self.fault is not None:
            code = NO_TAG_R2000 if self.fault is None else self.fault
            reply = r2000.ErrorReply(self.address, item.cmd, code)
            self.send(r2000.encode_error(reply))
            return
        for tag in tags:
            freq = self.rng.randrange(0x40)
            read = r2000.TagRead(
                self.address, freq, tag.antenna, r2000.pc_for(tag.epc), tag.epc, tag.rssi
            )
            self.send(r2000.encode_tag_read(read))
        end = r2000.InventoryEnd(self.address, 0, len(tags) * 10, len(tags))
        self.send(r2000.encode_inventory_end(end))


READERS: dict[str, type[UhfReader]] = {cls.protocol: cls for cls in (ChafonReader, R2000Reader)}
