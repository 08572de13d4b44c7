"""``traceedge collector token …``, ``audit …`` and ``import-sites``: who may use the API and
console, the audit trail of what they did, and the sites registry that scopes them.

Every change made here is an audit entry (actor ``cli:<user>@<host>``), signed with the
centre's command key when this user can read it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector import audit
from collector.settings import load_collector
from hostlib.db import Db
from hostlib.sqlite import write_tx
from traceedge.cli.common import config_option, friendly_errors


def cli_actor() -> audit.Actor:
    """The person at this terminal, as the audit log names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return audit.Actor(f"cli:{user}@{socket.gethostname()}", "admin", "local")


def signing_key(config_path: Path) -> Ed25519PrivateKey | None:
    """The centre's command key, if this user can read it (else entries go unsigned and
    ``audit verify --key`` will say the head is not signed)."""
    from wire.command import load_private_key
    from wire.envelope import WireError

    path = load_collector(config_path, files=False).command_key
    try:
        return load_private_key(path)
    except (OSError, WireError) as exc:
        click.echo(f"warning: cannot read the command key {path} ({exc}): unsigned", err=True)
        return None


@contextmanager
def audited_store(config_path: Path) -> Iterator[Db]:
    """The configured collector's store, read-write: autocommit, each change in its own
    ``write_tx`` (a SQLite store is created if new; a PostgreSQL one must be migrated)."""
    from collector.store import SqliteStore
    from collector.storedb import of_settings

    settings = load_collector(config_path, files=False)
    if settings.store.url:
        storedb = of_settings(settings)
        try:
            db = storedb.connect()
            try:
                yield db
            finally:
                db.close()
        finally:
            storedb.close()
        return
    store = SqliteStore(settings.store_path)
    try:
        yield store.db
    finally:
        store.close()


@contextmanager
def reading_store(config_path: Path) -> Iterator[Db]:
    """The configured collector's store, read-only."""
    from collector.storedb import of_settings

    storedb = of_settings(load_collector(config_path, files=False))
    try:
        with storedb.read() as db:
            yield db
    finally:
        storedb.close()


def record_import(db: Db, config_path: Path, kind: str, source: Path, count: int) -> None:
    """The audit entry of a registry import (inside the import's transaction)."""
    data = source.read_bytes()
    detail = {"file": str(source), "sha256": hashlib.sha256(data).hexdigest(), "rows": count}
    audit.record(
        db, cli_actor(), f"import.{kind}", source.name, detail, signing_key=signing_key(config_path)
    )


# ---------------------------------------------------------------------------------------------
# tokens


@click.group("token")
def token_group() -> None:
    """API tokens for the regulator API and console: create, list, revoke.

    \b
    Roles: inspector (reads everything in scope, acknowledges alarms), operator (its own
    market's batches: stop and lift), admin (everything), monitor (/metrics only).
    Scopes: all | district:CODE | site:CODE | market:CODE (docs/access.md).

    \b
    Example:
      traceedge collector token create --config collector.toml --role inspector \\
          --scope district:310101 --name "Zhang Wei, Huangpu market supervision"
    """


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


@token_group.command("create")
@config_option("Collector")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["inspector", "operator", "admin", "monitor"]),
    help="What the token may do.",
)
@click.option(
    "--scope",
    default="all",
    show_default=True,
    help="What it sees: all, district:CODE, site:CODE or market:CODE (operators need a market).",
)
@click.option("--name", required=True, help="Who holds it (shown in the audit log).")
@click.option("--days", type=click.IntRange(1, 3650), help="Expires after this many days.")
def token_create_cmd(config_path: Path, role: str, scope: str, name: str, days: int | None) -> None:
    """Make a token and print it once (only its hash is kept).

    \b
    Example:
      traceedge collector token create --config collector.toml --role operator \\
          --scope market:M330106001 --name "Hangzhou Sijiqing market office" --days 365
    """
    from collector.tokens import AccessError, TokenStore

    with friendly_errors():
        key = signing_key(config_path)
        with audited_store(config_path) as db:
            try:
                info, text = TokenStore(db).create(
                    role, scope, name, cli_actor(), days * 86400.0 if days else None, key
                )
            except AccessError as exc:
                raise click.UsageError(str(exc)) from exc
    click.echo(f"token {info.id}: {info.role}, scope {info.scope}, for {info.name}", err=True)
    if info.expires:
        click.echo(f"expires {_when(info.expires)}", err=True)
    click.echo("the token (shown once, keep it secret):", err=True)
    click.echo(text)


@token_group.command("list")
@config_option("Collector")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per token.")
def token_list_cmd(config_path: Path, as_json: bool) -> None:
    """List tokens: id, role, scope, holder, created, expiry, revocation (never secrets).

    \b
    Example:
      traceedge collector token list --config collector.toml
    """
    import dataclasses

    from collector.tokens import TokenStore

    with friendly_errors(), audited_store(config_path) as db:
        tokens = TokenStore(db).list()
    for t in tokens:
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(t), ensure_ascii=False))
            continue
        state = "revoked" if t.revoked else ("expired" if not t.active() else "active")
        click.echo(
            f"{t.id}  {t.role:9} {t.scope:20} {state:8} created {_when(t.created)}  "
            f"expires {_when(t.expires)}  {t.name}"
        )
    if not tokens and not as_json:
        click.echo("no tokens yet: traceedge collector token create --help")


@token_group.command("revoke")
@config_option("Collector")
@click.argument("token_id")
def token_revoke_cmd(config_path: Path, token_id: str) -> None:
    """Revoke a token by its id (the 8 hex digits after te_): refused from the next request.

    \b
    Example:
      traceedge collector token revoke --config collector.toml 3f9a01c2
    """
    from collector.tokens import AccessError, TokenStore

    with friendly_errors():
        key = signing_key(config_path)
        with audited_store(config_path) as db:
            try:
                info = TokenStore(db).revoke(token_id, cli_actor(), key)
            except AccessError as exc:
                raise click.ClickException(str(exc)) from exc
    click.echo(f"token {info.id} ({info.role}, {info.name}) revoked")


# ---------------------------------------------------------------------------------------------
# audit


@click.group("audit")
def audit_group() -> None:
    """The audit log: every write through the API, console and this command line.

    \b
    Example:
      traceedge collector audit verify --config collector.toml
    """


@audit_group.command("verify")
@config_option("Collector")
@click.option(
    "--key",
    "pub_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="command.pub: also check the head's signature (catches a rewritten chain).",
)
def audit_verify_cmd(config_path: Path, pub_path: Path | None) -> None:
    """Check the chain: every entry hashed over the one before; exit 1 naming the first
    entry edited, deleted or out of order.

    \b
    Example:
      traceedge collector audit verify --config collector.toml --key /etc/traceedge/command.pub
    """
    from wire.command import load_public_key

    with friendly_errors():
        key = load_public_key(pub_path) if pub_path else None
        with reading_store(config_path) as db:
            check = audit.verify(db, key)
    if not check.ok:
        raise click.ClickException(
            f"audit log BROKEN at entry {check.bad_id}: {check.problem} "
            f"({check.entries} entries verified before it)"
        )
    signed = ", head signature verified" if check.signed else ""
    click.echo(f"audit log intact: {check.entries} entries, head {check.head[:16]}…{signed}")


@audit_group.command("show")
@config_option("Collector")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@click.option("--action", help="Only this action, or a prefix ending in '.' (batch.).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
def audit_show_cmd(config_path: Path, limit: int, action: str | None, as_json: bool) -> None:
    """Show the newest entries.

    \b
    Example:
      traceedge collector audit show --config collector.toml --action batch. --limit 20
    """
    import dataclasses

    with friendly_errors(), reading_store(config_path) as db:
        rows = audit.entries(db, limit, action=action)
    for e in rows:
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(e), ensure_ascii=False))
        else:
            detail = json.dumps(e.detail, ensure_ascii=False)
            click.echo(
                f"#{e.id} {_when(e.at)} {e.actor} ({e.role}, {e.address}) {e.action} "
                f"{e.target}: {e.result} {detail}"
            )


# ---------------------------------------------------------------------------------------------
# sites


def _rows(source: Path) -> list[Any]:
    text = source.read_text(encoding="utf-8-sig")
    if source.suffix.lower() == ".csv":
        import csv
        import io

        return [dict(r) for r in csv.DictReader(io.StringIO(text))]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise click.ClickException(f"{source}: not JSON ({exc}); nothing imported") from exc
    if not isinstance(data, list):
        raise click.ClickException(f"{source}: a JSON list of sites is expected")
    return data


@click.command("import-sites")
@config_option("Collector")
@click.argument(
    "source", metavar="SITES", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def import_sites_cmd(config_path: Path, source: Path) -> None:
    """Import the sites registry (JSON list, or CSV with a header row).

    Each site: site (site code) and name required; district (division code, digits: a
    token scoped to district:3101 sees 310101 and 310104), kind (market, filling-station,
    elevator, warehouse, other), market (the market code its terminals record), address,
    phone (the complaint line on the shopper's page) optional. All or nothing.

    \b
    Example:
      traceedge collector import-sites --config collector.toml sites.csv
    with sites.csv:
      site,name,district,kind,market,address,phone
      S001,杭州四季青农贸市场,330106,market,M330106001,杭州市西湖区文三路 90 号,0571-88880000
    """
    from collector.sites import import_sites

    rows = _rows(source)
    with friendly_errors(), audited_store(config_path) as db:
        try:
            with write_tx(db):
                n = import_sites(db, rows)
                record_import(db, config_path, "sites", source, n)
        except ValueError as exc:
            raise click.ClickException(f"{source}: {exc}; nothing imported") from exc
    click.echo(f"imported {n} sites")


COMMANDS = (token_group, audit_group, import_sites_cmd)
