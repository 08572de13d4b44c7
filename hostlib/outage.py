"""One failure that repeats until it ends, logged as an operator wants to read it.

A broker that is down, a platform that does not answer, a store that stays locked: the
process retries every few seconds for as long as it takes, and a log line per attempt
buries everything else. :class:`Outage` logs

- the first failure at its level (WARNING unless told), and at once again when the cause
  changes (another ``key``: the broker is back but now refuses our certificate);
- the repeats at DEBUG, with a summary at the failure's level every ``every_s`` seconds:
  ``"<subject>: still failing after 37 attempts over 300 s: <detail>"``;
- the end once, at INFO: ``"<subject>: recovered after 37 failed attempts over 312 s"``.

Not thread-safe: each outage belongs to the one thread that retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

SUMMARY_EVERY_S = 300.0


class Outage:
    def __init__(
        self,
        logger: logging.Logger,
        subject: str,
        every_s: float = SUMMARY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.subject, self.every_s, self.clock = logger, subject, every_s, clock
        self.attempts = 0  # failures since the last success
        self._key: str | None = None
        self._since = 0.0
        self._said_at = 0.0

    def failed(self, detail: str, level: int = logging.WARNING, key: str | None = None) -> None:
        """One more failed attempt; ``key`` tells repeats of one cause apart from a new cause
        (``detail`` itself unless given, for details that name a batch or a count)."""
        key = detail if key is None else key
        now = self.clock()
        self.attempts += 1
        if self.attempts == 1:
            self._since = now
        if self.attempts == 1 or key != self._key:
            self.log.log(level, "%s: %s", self.subject, detail)
        elif now - self._said_at >= self.every_s:
            self.log.log(
                level,
                "%s: still failing after %d attempts over %.0f s: %s",
                self.subject,
                self.attempts,
                now - self._since,
                detail,
            )
        else:
            self.log.debug("%s: %s (attempt %d)", self.subject, detail, self.attempts)
            return
        self._key, self._said_at = key, now

    def ended(self) -> None:
        """The thing works again; said once (INFO) when it had failed."""
        if self.attempts:
            self.log.info(
                "%s: recovered after %d failed attempt%s over %.0f s",
                self.subject,
                self.attempts,
                "" if self.attempts == 1 else "s",
                self.clock() - self._since,
            )
        self.attempts, self._key = 0, None
