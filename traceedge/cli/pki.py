"""``traceedge pki``: the project CA that the central broker's TLS rests on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from hostlib import cadir
from hostlib.pki import KINDS
from traceedge.cli.common import friendly_errors

dir_option = click.option(
    "--dir",
    "ca_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The CA's folder (holds the CA key: keep it offline).",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@click.group("pki")
def command() -> None:
    """A project CA: certificates for the central broker, gateways and collectors.

    \b
    Example:
      traceedge pki init --dir ./ca
      traceedge pki issue --dir ./ca --kind server --name broker --host mqtt.example.org
      traceedge pki issue --dir ./ca --kind gateway --name GW-S1-0A1B2C
      traceedge pki revoke --dir ./ca --name GW-S1-0A1B2C
    """


@command.command("init")
@dir_option
@click.option("--name", default="traceedge project CA", show_default=True, help="CA's CN.")
@click.option("--days", type=click.IntRange(1), default=3650, show_default=True)
@click.option(
    "--crl-days",
    type=click.IntRange(1),
    default=365,
    show_default=True,
    help="How long each CRL stays valid; refresh it before then (traceedge pki crl).",
)
def init_cmd(ca_dir: Path, name: str, days: int, crl_days: int) -> None:
    """Create the CA (EC P-256; key file mode 0600) and an empty CRL.

    \b
    Example:
      traceedge pki init --dir /srv/traceedge-ca --days 3650
    """
    with friendly_errors():
        cadir.init(ca_dir, name, days, crl_days, _now())
    click.echo(f"CA certificate {ca_dir / cadir.CA_CERT}, CRL {ca_dir / cadir.CRL}")


@command.command("issue")
@dir_option
@click.option(
    "--kind", type=click.Choice(KINDS), required=True, help="What the certificate is for."
)
@click.option(
    "--name",
    required=True,
    help="CN: the gateway's device id, the collector's client id, or a server's name.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="Server only: a DNS name or IP address clients connect to (repeat for more).",
)
@click.option("--days", type=click.IntRange(1), default=825, show_default=True)
def issue_cmd(ca_dir: Path, kind: str, name: str, hosts: tuple[str, ...], days: int) -> None:
    """Issue a certificate and key (``<dir>/issued/<name>.pem`` and ``.key``).

    \b
    Example:
      traceedge pki issue --dir ./ca --kind server --name central --host mqtt.example.org \\
          --host 203.0.113.7
      traceedge pki issue --dir ./ca --kind collector --name collector-1
    """
    with friendly_errors():
        done = cadir.issue(ca_dir, kind, name, hosts, days, _now())
    click.echo(f"{done.entry.serial}\t{done.cert}\t{done.key}")


@command.command("revoke")
@dir_option
@click.option("--name", default=None, help="Revoke this name's certificate.")
@click.option("--serial", default=None, help="Or revoke by serial (hex, as `issue` printed).")
def revoke_cmd(ca_dir: Path, name: str | None, serial: str | None) -> None:
    """Revoke a certificate and rewrite the CRL; then reload the central broker.

    \b
    Example:
      traceedge pki revoke --dir ./ca --name GW-S1-0A1B2C
      traceedge broker config --role central --registry devices.json --pki ./ca \\
          --out /etc/mosquitto/central
    """
    with friendly_errors():
        hit = cadir.revoke(ca_dir, _now(), name=name, serial=serial)
    for e in hit:
        click.echo(f"revoked {e.kind} {e.name} serial {e.serial}")
    click.echo(
        f"CRL written to {ca_dir / cadir.CRL}; give it to the broker and reload it", err=True
    )


@command.command("crl")
@dir_option
@click.option(
    "--days", type=click.IntRange(1), default=None, help="New validity (default: as before)."
)
def crl_cmd(ca_dir: Path, days: int | None) -> None:
    """Sign the CRL again so it does not expire (an expired CRL locks every client out).

    \b
    Example:
      traceedge pki crl --dir ./ca --days 365
    """
    with friendly_errors():
        until = cadir.refresh_crl(ca_dir, _now(), days)
    click.echo(f"{ca_dir / cadir.CRL} valid until {until.isoformat()}")


@command.command("list")
@dir_option
def list_cmd(ca_dir: Path) -> None:
    """List issued certificates: serial, kind, name, valid until, revoked.

    \b
    Example:
      traceedge pki list --dir ./ca
    """
    with friendly_errors():
        entries = cadir.certs(ca_dir)
    for e in entries:
        click.echo(f"{e.serial}\t{e.kind}\t{e.name}\t{e.not_after}\t{e.revoked or '-'}")
