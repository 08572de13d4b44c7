"""Real PostgreSQL for the tests: a fresh database per test on the machine's server, and a
private cluster a fault test may stop, kill and restart.

- :func:`server_url` is the machine's server (``TRACEEDGE_TEST_PG`` overrides it);
  :func:`fresh_database` creates a database there and drops it after (``WITH (FORCE)``: a
  collector killed mid-transaction leaves no session that keeps the drop waiting). A server
  that does not answer fails the test with what to install and start, never a skip.
- :class:`PgCluster` is Debian's ``initdb`` in a temporary folder, its own port on
  127.0.0.1, trust auth, ``fsync`` on: what a restart or a ``kill -9`` does to it touches no
  other test. Debian's binaries refuse to run as root, so as root they run as the
  ``postgres`` user (``runuser``) in a folder that user owns; as anyone else, directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
from psycopg import sql

from traceedge.brokers import free_port

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_HINT = (
    "install it with `apt-get install postgresql`; `make test` installs it and starts the "
    "server (pg_ctlcluster 15 main start), trust auth for 127.0.0.1. "
    "TRACEEDGE_TEST_PG=postgresql://user@host:port/db points the tests at another server"
)
PG_BIN_ROOT = Path("/usr/lib/postgresql")


class PgUnavailable(Exception):
    """The PostgreSQL the tests need cannot be had; the message says what to install."""


def server_url() -> str:
    return os.environ.get("TRACEEDGE_TEST_PG") or DEFAULT_SERVER


def with_dbname(url: str, dbname: str) -> str:
    """``url`` naming database ``dbname`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def connect_admin(url: str, timeout_s: int = 5) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=timeout_s)
    except psycopg.OperationalError as exc:
        raise PgUnavailable(f"PostgreSQL at {url} does not answer ({exc}): {PG_HINT}") from exc


def create_database(server: str, prefix: str = "te_test") -> str:
    """A new empty database on ``server``; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with connect_admin(server) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_dbname(server, name)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, ending any session still in it."""
    name = urlsplit(url).path.lstrip("/")
    with connect_admin(with_dbname(url, "postgres")) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def fresh_database(server: str | None = None, prefix: str = "te_test") -> Iterator[str]:
    url = create_database(server or server_url(), prefix)
    try:
        yield url
    finally:
        drop_database(url)


def pg_bindir() -> Path:
    """Debian's binaries of the newest PostgreSQL installed."""
    versions = sorted(
        (p for p in PG_BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PgUnavailable(f"no initdb under {PG_BIN_ROOT}/*/bin: {PG_HINT}")
    return versions[-1]


class PgCluster:
    """A private PostgreSQL cluster on a free port, for tests that stop or kill it.

    ``start()`` creates it on first use (initdb). ``stop("fast" | "immediate")`` goes
    through ``pg_ctl`` (immediate: no checkpoint, crash recovery at the next start);
    ``kill9()`` kills the postmaster and every backend at once, a power cut as far as the
    server can tell. ``close()`` stops it and removes its folder.
    """

    def __init__(self, port: int | None = None) -> None:
        self.bindir = pg_bindir()
        self.port = port or free_port()
        self.as_postgres = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="te-pgcluster-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._initialised = False

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise PgUnavailable(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"\nserver log:\n{self.log_tail()}"
            )
        return proc

    def _initdb(self) -> None:
        # --no-sync: only initdb's own files skip the fsync; the server runs with fsync on
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        conf = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "60",
            "shared_buffers": "32MB",
            "logging_collector": "off",
        }
        extra = "".join(f"{k} = {v}\n" for k, v in conf.items())
        if self.as_postgres:
            # the file belongs to postgres; append through it
            tee = ["runuser", "-u", "postgres", "--", "tee", "-a"]
            conf_file = str(self.data / "postgresql.conf")
            subprocess.run(
                [*tee, conf_file], input=extra, text=True, check=True, capture_output=True
            )
        else:
            with open(self.data / "postgresql.conf", "a") as f:
                f.write(extra)
        self._initialised = True

    def start(self) -> PgCluster:
        if not self._initialised:
            self._initdb()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"pg_ctl stop mode {mode!r}: smart, fast or immediate")
        if self.pid() is None:
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast", down_s: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (FileNotFoundError, ValueError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def kill9(self) -> None:
        """SIGKILL to the postmaster and all its backends at once (no shutdown at all)."""
        pid = self.pid()
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10)

    def running(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "te_test") -> str:
        return create_database(self.url(), prefix)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except (FileNotFoundError, PermissionError):
            return ""

    def close(self) -> None:
        try:
            if self.pid() is not None:
                try:
                    self.stop("immediate")
                except (PgUnavailable, subprocess.TimeoutExpired):
                    self.kill9()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
