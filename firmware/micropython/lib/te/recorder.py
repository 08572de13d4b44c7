"""Records: made through the shared wire contract, written to the flash log, numbered,
each signed with the key valid for its seq (``te.config.Keys``).

``Ids`` keeps the boot counter and the seq floor in one state file. At start the boot
counter goes up by one (saved before any record is made) and the next seq is one past
the larger of the saved floor and the newest seq in the flash log; the log saves the
floor before it deletes a segment. So a seq is never reused for a record that left the
device: a record whose write was torn never left it (it is sent only from the log).
"""

from te.flashlog import LogFull
from te.state import StateFile
from wire.canonical import canonical
from wire.envelope import PROTECTED_KINDS, make_record

_TYPING = False
if _TYPING:
    from typing import Any

    from te.config import Keys
    from te.flashlog import FlashLog
    from te.fs import FS
    from te.timekeeper import TimeKeeper


class Ids:
    def __init__(self, fs: "FS", path: str) -> None:
        self.file = StateFile(fs, path)
        self.boot = 0
        self.floor = 0

    def start(self, log_last_seq: int) -> "tuple[int, int]":
        """Count this boot; return ``(boot, last seq used)``."""
        d = self.file.load() or {}
        self.boot = int(d.get("boot", 0)) + 1
        self.floor = max(int(d.get("seq", 0)), log_last_seq)
        self.file.save({"boot": self.boot, "seq": self.floor})
        return self.boot, self.floor

    def save_floor(self, seq: int) -> None:
        if seq > self.floor:
            self.floor = seq
            self.file.save({"boot": self.boot, "seq": seq})


class Refused(Exception):
    """A protected record could not be stored (flash log full or failing); the app must
    not act as if it were recorded. Retrying helps once the gateway acknowledges."""


class Recorder:
    def __init__(
        self, dev: str, keys: "Keys", log: "FlashLog", ids: Ids, time: "TimeKeeper"
    ) -> None:
        self.dev = dev
        self.keys = keys
        self.log = log
        self.ids = ids
        self.time = time
        log.on_free = ids.save_floor
        self.boot, self.seq = ids.start(log.last_seq)
        self.made = 0
        self.dropped = 0  # status samples not stored (log full)
        self.io_errors = 0
        self.flash_bytes = 0

    def record(
        self, kind: str, body: "dict[str, Any]", at: "tuple[int, str] | None" = None
    ) -> "dict[str, Any] | None":
        """Make, sign and store a record. Returns it, or ``None`` for a status sample that
        did not fit; raises ``Refused`` for a protected record that could not be stored."""
        seq = self.seq + 1
        ts, tq = at if at is not None else self.time.now()
        rec = make_record(self.dev, seq, self.boot, kind, ts, tq, body, self.keys.for_seq(seq))
        protected = kind in PROTECTED_KINDS
        try:
            self.flash_bytes += self.log.append(seq, canonical(rec), protected)
        except LogFull as exc:
            if not protected:
                self.dropped += 1
                return None
            raise Refused(str(exc)) from exc
        except OSError as exc:
            self.io_errors += 1
            raise Refused("flash log write failed: %s" % exc) from exc
        self.seq = seq
        self.made += 1
        return rec
