"""``traceedge collector archive``: retention of the store (:mod:`collector.archive`)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from collector.settings import load_collector
from hostlib.errors import ConfigError
from traceedge.cli.common import config_option, friendly_errors

CHINA = 8 * 3600


def _china_day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000 + CHINA))


def _verify(root: Path) -> None:
    from collector.archive import files

    checked, problems = files.verify(root)
    for p in problems:
        click.echo(f"BAD {p}", err=True)
    if problems:
        raise click.ClickException(
            f"{len(problems)} of {checked} archive files are damaged or missing "
            f"(first: {problems[0]}); restore them from a backup"
        )
    click.echo(f"{root}: {checked} files checked, sha256 and row counts match their manifests")


@click.command("archive")
@config_option("Collector")
@click.option(
    "--older-than-days",
    type=click.IntRange(1, 36500),
    help="Move records captured more than N days ago (default: [retention] keep_days).",
)
@click.option(
    "--dry-run", is_flag=True, help="Say what would move, by day and site; change nothing."
)
@click.option(
    "--verify",
    is_flag=True,
    help="Check every archived file's sha256 and row count against its manifest and exit "
    "non-zero naming each bad file; move nothing.",
)
def archive_cmd(
    config_path: Path, older_than_days: int | None, dry_run: bool, verify: bool
) -> None:
    """Move records past retention from the store to Parquet files, one per day and site.

    Only records the city platform has (forwarded, not held, no delivery pending) and the
    market projection has applied leave the store; their keys stay, so a resent copy is
    still a duplicate or a conflict. Whole days move (China time): records captured before
    midnight starting the day N days before today. Files: <dir>/<YYYY-MM-DD>/<site>.parquet
    with a manifest.json per day (sha256, rows, ids, times); docs/deploy.md has the details.
    Safe to interrupt and to run again; run it daily from a timer beside a running collector.

    \b
    Example:
      traceedge collector archive --config /etc/traceedge/collector.toml --dry-run
      traceedge collector archive --config /etc/traceedge/collector.toml --older-than-days 180
      traceedge collector archive --config /etc/traceedge/collector.toml --verify
    """
    with friendly_errors():
        settings = load_collector(config_path, files=False)
        root = settings.archive_dir
        if verify:
            _verify(root)
            return
        keep = older_than_days or (settings.retention.keep_days if settings.retention else None)
        if keep is None:
            raise ConfigError(
                str(config_path), "retention.keep_days", "not set: set it or pass --older-than-days"
            )
        path = settings.store_path
        if not path.exists():
            raise ConfigError(str(path), "", "no store here: has the collector ever run?")
    _archive(path, root, keep, dry_run)


def _archive(path: Path, root: Path, keep: int, dry_run: bool) -> None:
    from collector.archive import run
    from collector.archive.files import ArchiveFileError
    from collector.archive.source import SqliteArchiveSource
    from collector.store import SqliteStore

    cutoff = run.cutoff_ms(int(time.time() * 1000), keep)
    click.echo(f"archiving records captured before {_china_day(cutoff)} (China time) to {root}")
    with friendly_errors(str(path)):
        store = SqliteStore(path)
        try:
            summary = run.run(
                SqliteArchiveSource(store),
                root,
                cutoff,
                dry_run=dry_run,
                progress=lambda line: click.echo(f"  {line}", err=True),
            )
        except ArchiveFileError as exc:
            raise click.ClickException(f"{exc}; nothing more was removed from the store") from exc
        finally:
            store.close()
    kept = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.kept_back.items() if v)
    if dry_run:
        for (day, site), n in summary.planned.items():
            click.echo(f"  {day} {site}: {n} records")
        days = {d for d, _ in summary.planned}
        click.echo(
            f"dry run: {summary.rows} records of {len(days)} days, {len(summary.planned)} "
            f"day/site files would move; kept back: {kept or 'none'}"
        )
        return
    days = {f.day for f in summary.files}
    sites = {f.site for f in summary.files}
    click.echo(
        f"{len(summary.files)} files ({len(days)} days, {len(sites)} sites), "
        f"{summary.rows} records, {summary.bytes} bytes written; {summary.freed} records "
        f"removed from the store"
        + (
            f" ({summary.recovered} files of an interrupted run finished)"
            if summary.recovered
            else ""
        )
        + f"; kept back: {kept or 'none'}"
    )


COMMANDS = [archive_cmd]
