"""NXP MFRC522 (13.56 MHz, ISO 14443-A) on SPI: the card readers of the three terminals.

``read_uid()`` runs REQA, anticollision and select through cascade levels 1-3 (4, 7 or
10 byte UIDs) and halts the card, so a card answers once per tap: it must leave the field
before it is read again. CRC_A comes from the chip's own coprocessor. ``CardWatch``
polls it every ``every_ms`` and returns each new tap's UID as upper-case hex.
"""

from micropython import const

_TYPING = False
if _TYPING:
    from machine import SPI

    from te.hal import Clock, Out

COMMAND = const(0x01)
COM_IEN = const(0x02)
COM_IRQ = const(0x04)
DIV_IRQ = const(0x05)
ERROR = const(0x06)
FIFO_DATA = const(0x09)
FIFO_LEVEL = const(0x0A)
CONTROL = const(0x0C)
BIT_FRAMING = const(0x0D)
MODE = const(0x11)
TX_CONTROL = const(0x14)
TX_ASK = const(0x15)
CRC_H = const(0x21)
CRC_L = const(0x22)
T_MODE = const(0x2A)
T_PRESCALER = const(0x2B)
T_RELOAD_H = const(0x2C)
T_RELOAD_L = const(0x2D)
VERSION = const(0x37)

IDLE = const(0x00)
CALC_CRC = const(0x03)
TRANSCEIVE = const(0x0C)
SOFT_RESET = const(0x0F)

REQA = const(0x26)
HLTA = const(0x50)
CT = const(0x88)
SEL = (0x93, 0x95, 0x97)
LOOPS = const(200)


class RfidError(Exception):
    """The reader chip does not answer or is not an MFRC522. A reset may help."""


class Mfrc522:
    def __init__(self, spi: "SPI", cs: "Out", rst: "Out | None" = None) -> None:
        self.spi = spi
        self.cs = cs
        self.rst = rst
        self._tx = bytearray(2)
        self._rx = bytearray(2)
        self.version = 0

    def wreg(self, reg: int, val: int) -> None:
        self._tx[0] = (reg << 1) & 0x7E
        self._tx[1] = val & 0xFF
        self.cs.set(True)
        self.spi.write(self._tx)
        self.cs.set(False)

    def rreg(self, reg: int) -> int:
        self._tx[0] = ((reg << 1) & 0x7E) | 0x80
        self._tx[1] = 0
        self.cs.set(True)
        self.spi.write_readinto(self._tx, self._rx)
        self.cs.set(False)
        return self._rx[1]

    def _set(self, reg: int, mask: int) -> None:
        self.wreg(reg, self.rreg(reg) | mask)

    def _clear(self, reg: int, mask: int) -> None:
        self.wreg(reg, self.rreg(reg) & ~mask)

    def init(self) -> None:
        if self.rst is not None:
            self.rst.set(True)
            self.rst.set(False)
        self.wreg(COMMAND, SOFT_RESET)
        self.wreg(T_MODE, 0x8D)
        self.wreg(T_PRESCALER, 0x3E)
        self.wreg(T_RELOAD_L, 30)
        self.wreg(T_RELOAD_H, 0)
        self.wreg(TX_ASK, 0x40)
        self.wreg(MODE, 0x3D)
        self._set(TX_CONTROL, 0x03)  # antenna on
        self.version = self.rreg(VERSION)
        if self.version not in (0x88, 0x90, 0x91, 0x92, 0xB2):
            raise RfidError("no MFRC522 on the bus (version 0x%02x)" % self.version)

    def _fifo(self, data: bytes) -> None:
        self.wreg(COMMAND, IDLE)
        self._set(FIFO_LEVEL, 0x80)  # flush
        for b in data:
            self.wreg(FIFO_DATA, b)

    def transceive(self, data: bytes, last_bits: int = 0) -> "bytes | None":
        """Send a frame to the card; its answer, or ``None`` (timeout or error)."""
        self.wreg(COM_IEN, 0xF7)
        self.wreg(COM_IRQ, 0x7F)
        self._fifo(data)
        self.wreg(BIT_FRAMING, last_bits)
        self.wreg(COMMAND, TRANSCEIVE)
        self._set(BIT_FRAMING, 0x80)  # StartSend
        irq = 0
        for _ in range(LOOPS):
            irq = self.rreg(COM_IRQ)
            if irq & 0x31:
                break
        self._clear(BIT_FRAMING, 0x80)
        if not irq & 0x30 or irq & 0x01 or self.rreg(ERROR) & 0x1B:
            return None
        n = self.rreg(FIFO_LEVEL)
        out = bytearray(n)
        for i in range(n):
            out[i] = self.rreg(FIFO_DATA)
        return bytes(out)

    def crc_a(self, data: bytes) -> bytes:
        self.wreg(DIV_IRQ, 0x04)
        self._fifo(data)
        self.wreg(COMMAND, CALC_CRC)
        for _ in range(LOOPS):
            if self.rreg(DIV_IRQ) & 0x04:
                break
        else:
            raise RfidError("CRC coprocessor timed out")
        self.wreg(COMMAND, IDLE)
        return bytes([self.rreg(CRC_L), self.rreg(CRC_H)])

    def read_uid(self) -> "bytes | None":
        """The UID of a card newly in the field, or ``None``."""
        atqa = self.transceive(bytes([REQA]), 7)
        if atqa is None or len(atqa) != 2:
            return None
        uid = b""
        for sel in SEL:
            cl = self.transceive(bytes([sel, 0x20]))
            if cl is None or len(cl) != 5 or cl[0] ^ cl[1] ^ cl[2] ^ cl[3] != cl[4]:
                return None
            frame = bytes([sel, 0x70]) + cl
            sak = self.transceive(frame + self.crc_a(frame))
            if sak is None or len(sak) != 3:
                return None
            if cl[0] == CT:
                uid += cl[1:4]
                if not sak[0] & 0x04:
                    return None
                continue
            uid += cl[0:4]
            break
        halt = bytes([HLTA, 0])
        self.transceive(halt + self.crc_a(halt))
        return uid


class CardWatch:
    """Polls the reader; ``poll`` returns a tap's UID (hex) once, else ``None``."""

    def __init__(self, reader: Mfrc522, clock: "Clock", every_ms: int = 250) -> None:
        self.reader = reader
        self.clock = clock
        self.every_ms = every_ms
        self.last = clock.add(clock.ticks_ms(), -every_ms)
        self.taps = 0

    def poll(self, now: int) -> "str | None":
        if self.clock.diff(now, self.last) < self.every_ms:
            return None
        self.last = now
        uid = self.reader.read_uid()
        if uid is None:
            return None
        self.taps += 1
        return "".join("%02X" % b for b in uid)
