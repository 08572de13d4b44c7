"""``traceedge platform``: run the fake city platform the collector forwards to."""

from __future__ import annotations

import logging
import sqlite3

import click

from traceedge.cli.common import log_format_option, setup_logging, verbose_option

log = logging.getLogger(__name__)


@click.group(name="platform")
def command() -> None:
    """Fake city traceability platform (HTTP) with fault injection, for tests and demos.

    \b
    Example:
      traceedge platform run --port 8090 --error-rate 0.1
    """


@command.command(name="run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    help="TCP port (0 picks a free one).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file that keeps received records across restarts (default: memory only).",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Fraction of POST /records calls answered 503 without storing.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Delay added to every POST /records reply.",
)
@click.option(
    "--down-for",
    "down_for_s",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Answer POST /records with 503 for this many seconds after start.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the error-rate generator."
)
@verbose_option
@log_format_option
def run(
    host: str,
    port: int,
    db_path: str | None,
    error_rate: float,
    latency_ms: int,
    down_for_s: float,
    seed: int,
    verbose: int,
    log_format: str,
) -> None:
    """Serve the fake platform in the foreground until Ctrl+C.

    Records are POSTed to /records as {"records": [...]} with an Idempotency-Key
    header; GET /stats shows what arrived, POST /faults changes the faults live. What it
    serves is announced on stdout (with --log-format json: in the log, on stderr).

    \b
    Example:
      traceedge platform run --port 8090 --db /tmp/platform.db --latency-ms 50
      traceedge platform run --port 8090 --log-format json
      curl -s http://127.0.0.1:8090/stats
      curl -s http://127.0.0.1:8090/faults -H 'Content-Type: application/json' \\
           -d '{"down_for_s": 30}'
    """
    setup_logging(max(verbose, 1), log_format)
    from simulators.platform import serve

    say = click.echo if log_format == "text" else log.info
    storage = f"SQLite file {db_path}" if db_path else "memory (lost on exit)"
    faults = f"error rate {error_rate:g}, latency {latency_ms} ms, down for {down_for_s:g} s"

    def announce(url: str) -> None:
        say(f"fake city platform listening on {url}")
        say(f"  storage: {storage}")
        say(f"  faults:  {faults} (seed {seed}); change live with POST {url}/faults")
        say(f"  deliver: POST {url}/records   stats: GET {url}/stats   Ctrl+C stops")

    try:
        serve(
            host,
            port,
            on_start=announce,
            db_path=db_path,
            error_rate=error_rate,
            latency_ms=latency_ms,
            down_for_s=down_for_s,
            seed=seed,
        )
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot open the SQLite file {db_path}: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    say("fake city platform stopped")
