"""``traceedge broker``: Mosquitto configs for the site and central brokers."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import tempfile
from pathlib import Path

import click

from hostlib import brokerconf, cadir
from hostlib.brokerconf import BrokerConfig, BrokerFile
from hostlib.errors import ConfigError
from hostlib.registry import Registry
from traceedge.cli.common import friendly_errors


@click.group("broker")
def command() -> None:
    """Broker configs generated from the device registry (and the project CA).

    \b
    Example:
      traceedge broker config --role site --site S1 --registry devices.json --out ./site-broker
    """


def _tls_files(ca: Path, server: str | None) -> list[BrokerFile]:
    """The CA certificate, the CRL and one live server certificate with its key."""
    now = dt.datetime.now(dt.UTC)
    live = [e for e in cadir.certs(ca) if e.kind == "server" and e.live(now)]
    if server is not None:
        live = [e for e in live if e.name == server]
    if len(live) != 1:
        names = ", ".join(e.name for e in live) or "none"
        raise ConfigError(
            "--server",
            server or "",
            f"need exactly one live server certificate in {ca} (found: {names}); "
            "issue one with `traceedge pki issue --kind server` or name it with --server",
        )
    issued = ca / cadir.ISSUED
    return [
        BrokerFile(brokerconf.CA_CERT, (ca / cadir.CA_CERT).read_text()),
        BrokerFile(brokerconf.CRL, (ca / cadir.CRL).read_text()),
        BrokerFile(brokerconf.SERVER_CERT, (issued / f"{live[0].name}.pem").read_text()),
        BrokerFile(brokerconf.SERVER_KEY, (issued / f"{live[0].name}.key").read_text(), 0o600),
    ]


def _owner(user: str | None) -> tuple[int, int] | None:
    """Whom the private files must belong to: ``user`` when we are root and it is not."""
    if user is None or os.geteuid() != 0 or user == "root":
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError("--user", user, "no such user on this machine") from None
    return pw.pw_uid, pw.pw_gid


def _write(out: Path, files: list[BrokerFile], owner: tuple[int, int] | None) -> None:
    """Each file replaced whole (mode set before its content); private files and the
    persistence folder handed to ``owner``."""
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    if owner:
        os.chown(data, *owner)
    for f in files:
        fd, tmp = tempfile.mkstemp(dir=str(out), prefix=f.name + ".")
        os.fchmod(fd, f.mode)
        if owner and f.mode & 0o077 == 0:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f.text)
        os.replace(tmp, out / f.name)


@command.command("config")
@click.option("--role", type=click.Choice(("site", "central")), required=True)
@click.option(
    "--registry",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Device registry (written by `traceedge device provision`).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for mosquitto.conf, acl, passwd (site) or the TLS files (central).",
)
@click.option("--site", default=None, help="Site role: the site whose broker this is.")
@click.option(
    "--pki",
    "ca_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Central role: CA folder to copy ca.pem, crl.pem and the server certificate from.",
)
@click.option("--server", default=None, help="Central role: server certificate name in --pki.")
@click.option(
    "--collector",
    "collectors",
    multiple=True,
    help="Central role: a collector's certificate CN (default: live collector certs in --pki).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="[1883 site, 8883 central]"
)
@click.option("--bind", default="0.0.0.0", show_default=True, help="Listen address.")
@click.option("--prefix", default="", help="Topic prefix the roles use (BrokerSettings prefix).")
@click.option(
    "--user",
    default=None,
    help="Account Mosquitto runs as (e.g. mosquitto): written to the config and, when run "
    "as root, made owner of the private files and data/.",
)
def config_cmd(
    role: str,
    registry: Path,
    out: Path,
    site: str | None,
    ca_dir: Path | None,
    server: str | None,
    collectors: tuple[str, ...],
    port: int | None,
    bind: str,
    prefix: str,
    user: str | None,
) -> None:
    """Write a broker's mosquitto.conf, ACL and (site) password file from the registry.

    The site broker logs devices in by user name (the device id) and the password
    provisioning gave them; the central broker by client certificate (mutual TLS, ACL by
    certificate CN). Regenerate after provisioning or revoking, then reload Mosquitto
    (SIGHUP).

    \b
    Example:
      traceedge broker config --role site --site S1 --registry devices.json \\
          --out /etc/mosquitto/traceedge --user mosquitto
      traceedge broker config --role central --registry devices.json --pki ./ca \\
          --out /etc/mosquitto/central --user mosquitto
      mosquitto -c /etc/mosquitto/central/mosquitto.conf
    """
    with friendly_errors():
        owner = _owner(user)
        if not registry.is_file():
            raise ConfigError(str(registry), "", "registry not found")
        devices = Registry(registry).devices().values()
        files: list[BrokerFile] = []
        cfg: BrokerConfig
        if role == "site":
            if site is None:
                raise ConfigError("--site", "", "is required with --role site")
            if ca_dir or server or collectors:
                raise ConfigError("--role", "site", "takes no --pki, --server or --collector")
            cfg = brokerconf.site_config(devices, site, out, port or 1883, bind, prefix, user)
        else:
            if site is not None:
                raise ConfigError("--site", site, "the central broker serves every site")
            if server is not None and ca_dir is None:
                raise ConfigError("--server", server, "names a certificate in --pki; give --pki")
            if ca_dir is not None:
                files = _tls_files(ca_dir, server)
                if not collectors:
                    now = dt.datetime.now(dt.UTC)
                    collectors = tuple(
                        e.name for e in cadir.certs(ca_dir) if e.kind == "collector" and e.live(now)
                    )
            cfg = brokerconf.central_config(
                devices, collectors, out, port or 8883, bind, prefix, user
            )
        _write(out, [*cfg.files, *files], owner)
    if cfg.left_out:
        click.echo(
            f"left out (no MQTT password in the registry; provision again): "
            f"{', '.join(cfg.left_out)}",
            err=True,
        )
    if role == "central" and ca_dir is None:
        missing = [
            n
            for n in (
                brokerconf.CA_CERT,
                brokerconf.CRL,
                brokerconf.SERVER_CERT,
                brokerconf.SERVER_KEY,
            )
            if not (out / n).exists()
        ]
        if missing:
            click.echo(f"put these from your CA into {out}: {', '.join(missing)}", err=True)
    click.echo(f"{role} broker: {len(cfg.users)} users; run: mosquitto -c {out / brokerconf.CONF}")
