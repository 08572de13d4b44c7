"""An MFRC522 at register level on a simulated SPI bus, with ISO 14443-A cards.

Implements what the driver uses: register reads/writes (``addr << 1``, bit 7 = read),
the FIFO, SoftReset, CalcCRC (CRC_A) and Transceive with REQA, anticollision / select on
cascade levels 1-2 (4 and 7 byte UIDs) and HLTA. A halted card stays silent until it
leaves the field, as a real one does. ``tap(uid)`` / ``remove()`` from the scenario.
"""

COMMAND = 0x01
COM_IRQ = 0x04
DIV_IRQ = 0x05
ERROR = 0x06
FIFO_DATA = 0x09
FIFO_LEVEL = 0x0A
CONTROL = 0x0C
BIT_FRAMING = 0x0D
CRC_H = 0x21
CRC_L = 0x22
VERSION = 0x37


def crc_a(data: bytes) -> bytes:
    """ISO/IEC 14443-3 CRC_A (preset 0x6363, reflected 0x8408), LSB first."""
    crc = 0x6363
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


def _bcc(b: bytes) -> int:
    return b[0] ^ b[1] ^ b[2] ^ b[3]


class Mfrc522Sim:
    def __init__(self, cs_pin: int) -> None:
        self.cs = cs_pin
        self.regs = bytearray(64)
        self.regs[VERSION] = 0x92
        self.fifo: "list[int]" = []
        self.uid = b""
        self.card_state = "none"  # none / idle / ready / active / halt
        self.level = 0
        self.frames = 0

    # -- scenario -------------------------------------------------------------------
    def tap(self, uid: bytes) -> None:
        self.uid = uid
        self.card_state = "idle"

    def remove(self) -> None:
        self.uid = b""
        self.card_state = "none"

    # -- SPI ------------------------------------------------------------------------
    def transfer(self, tx: bytes) -> bytes:
        addr = (tx[0] >> 1) & 0x3F
        read = bool(tx[0] & 0x80)
        rx = bytearray(len(tx))
        for i in range(1, len(tx)):
            if read:
                rx[i] = self._read(addr)
            else:
                self._write(addr, tx[i])
        return bytes(rx)

    def _read(self, reg: int) -> int:
        if reg == FIFO_DATA:
            return self.fifo.pop(0) if self.fifo else 0
        if reg == FIFO_LEVEL:
            return len(self.fifo)
        return self.regs[reg]

    def _write(self, reg: int, val: int) -> None:
        if reg == FIFO_DATA:
            self.fifo.append(val)
        elif reg == FIFO_LEVEL:
            if val & 0x80:
                self.fifo = []
        elif reg in (COM_IRQ, DIV_IRQ):  # bit 7 says: set (1) or clear (0) the others
            if val & 0x80:
                self.regs[reg] |= val & 0x7F
            else:
                self.regs[reg] &= ~val & 0x7F
        elif reg == COMMAND:
            self.regs[reg] = val
            cmd = val & 0x0F
            if cmd == 0x0F:  # SoftReset
                v = self.regs[VERSION]
                self.regs = bytearray(64)
                self.regs[VERSION] = v
                self.fifo = []
            elif cmd == 0x03:  # CalcCRC
                c = crc_a(bytes(self.fifo))
                self.regs[CRC_L] = c[0]
                self.regs[CRC_H] = c[1]
                self.regs[DIV_IRQ] |= 0x04
        elif reg == BIT_FRAMING:
            self.regs[reg] = val
            if val & 0x80 and self.regs[COMMAND] & 0x0F == 0x0C:
                self._transceive(val & 0x07)
        else:
            self.regs[reg] = val

    def _transceive(self, last_bits: int) -> None:
        frame = bytes(self.fifo)
        self.fifo = []
        self.frames += 1
        answer = self._picc(frame, last_bits)
        self.regs[ERROR] = 0
        if answer is None:
            self.regs[COM_IRQ] |= 0x01  # TimerIRq: no answer
        else:
            self.fifo = list(answer)
            self.regs[CONTROL] = 0
            self.regs[COM_IRQ] |= 0x30  # RxIRq | IdleIRq

    def _cascade(self, level: int) -> bytes:
        u = self.uid
        if len(u) == 4:
            part = u
        elif level == 1:
            part = b"\x88" + u[0:3]
        else:
            part = u[3:7]
        return part + bytes([_bcc(part)])

    def _picc(self, f: bytes, bits: int) -> "bytes | None":
        st = self.card_state
        if st == "none":
            return None
        if bits == 7 and len(f) == 1 and f[0] in (0x26, 0x52):
            if st == "halt" and f[0] == 0x26:
                return None
            self.card_state = "ready"
            self.level = 1
            return b"\x44\x00" if len(self.uid) == 7 else b"\x04\x00"
        if len(f) == 2 and f[0] in (0x93, 0x95) and f[1] == 0x20 and st == "ready":
            return self._cascade(1 if f[0] == 0x93 else 2)
        if len(f) == 9 and f[0] in (0x93, 0x95) and f[1] == 0x70 and st == "ready":
            if crc_a(f[:7]) != f[7:9]:
                return None
            level = 1 if f[0] == 0x93 else 2
            if f[2:7] != self._cascade(level):
                return None
            more = len(self.uid) == 7 and level == 1
            if not more:
                self.card_state = "active"
            sak = bytes([0x04 if more else 0x08])
            return sak + crc_a(sak)
        if len(f) == 4 and f[0] == 0x50 and f[1] == 0 and crc_a(f[:2]) == f[2:4]:
            self.card_state = "halt"
            return None
        return None
