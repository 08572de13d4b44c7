"""Root of traceedge's host-side errors (the roles raise these or subclasses of them).

TraceedgeError
├── ConfigError        bad or missing configuration; fix the file, retrying will not help
├── StartupError       a port or data directory this process needs is not free; retrying
│                      helps only once the other holder is gone
├── StoreError         the collector's store failed; retrying may help
├── BundleError        a sneakernet bundle or receipt is refused (torn, tampered, not
│                      ours, expired); retrying the same file will not help
└── WorkerDied         a worker thread of a running process died; the process exits
                       (non-zero) so that its supervisor starts it again
"""


class TraceedgeError(Exception):
    """Root of the errors the traceedge roles raise."""

    retryable = False


class ConfigError(TraceedgeError):
    """A configuration file is missing, unreadable or holds a bad value."""

    def __init__(self, path: str, key: str, message: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.key = key


class StartupError(TraceedgeError):
    """A process cannot start: its port cannot be bound, or another process holds its data
    directory. Nothing was started."""


class StoreError(TraceedgeError):
    """The collector's store could not commit; the batch is not acknowledged."""

    retryable = True


class BundleError(TraceedgeError):
    """A sneakernet bundle or receipt is refused, with the reason; nothing was stored or
    freed. Export again, or copy the file again from its source."""


class WorkerDied(TraceedgeError):
    """A worker thread died although each message is handled in isolation (a bug); the
    process stops and exits non-zero so that its supervisor restarts it."""

    retryable = True

    def __init__(self, process: str, dead: list[str]) -> None:
        super().__init__(f"{process}: worker thread(s) died: {', '.join(dead)}; exiting")
        self.dead = dead
