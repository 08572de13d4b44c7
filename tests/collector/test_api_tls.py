"""The regulator's listener over HTTPS, optionally with mutual TLS for machine clients."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import httpx
import pytest

from collector.api import ApiContext, ApiServer, make_app
from collector.settings import load_collector
from hostlib import pki
from hostlib.errors import StartupError
from tests.apiauth import admin_headers
from traceedge.brokers import free_port


def write_pki(tmp: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = pki.make_ca("traceedge test CA", 30, now)
    server = pki.make_cert(ca.cert_pem, ca.key_pem, "server", "api", ("127.0.0.1",), 30, now)
    client = pki.make_cert(ca.cert_pem, ca.key_pem, pki.KINDS[1], "platform-sync", (), 30, now)
    for name, data in {
        "ca.pem": ca.cert_pem,
        "server.pem": server.cert_pem,
        "server.key": server.key_pem,
        "client.pem": client.cert_pem,
        "client.key": client.key_pem,
    }.items():
        (tmp / name).write_bytes(data)


def config(tmp: Path, port: int, extra: str) -> Path:
    (tmp / "devices.json").write_text('{"devices": {}}')
    (tmp / "command.key").write_text("unused here")
    cfg = tmp / "collector.toml"
    cfg.write_text(
        '[collector]\ndata_dir = "data"\nregistry = "devices.json"\ncommand_key = "command.key"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = 1883\n[api]\nport = {port}\n{extra}'
    )
    return cfg


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path: Path) -> None:
    write_pki(tmp_path)
    port = free_port()
    cfg = config(
        tmp_path,
        port,
        'tls_cert = "server.pem"\ntls_key = "server.key"\nclient_ca = "ca.pem"\n',
    )
    settings = load_collector(cfg)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = ApiServer(
        make_app(ApiContext(settings.store_path)),
        f"{settings.path}: api",
        "127.0.0.1",
        port,
        settings.api_tls,
    )
    server.start()
    headers = admin_headers(settings.store_path)
    url = f"https://127.0.0.1:{port}/stats"
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with pytest.raises(httpx.HTTPError):  # the handshake fails: no client certificate
            httpx.get(url, headers=headers, verify=ctx, timeout=5)
        ctx.load_cert_chain(str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        r = httpx.get(url, headers=headers, verify=ctx, timeout=5)
        assert r.status_code == 200, r.text
        assert httpx.get(url, verify=ctx, timeout=5).status_code == 401  # a token still needed
    finally:
        server.stop()


def test_a_bad_certificate_stops_start_up(tmp_path: Path) -> None:
    write_pki(tmp_path)
    port = free_port()
    cfg = config(tmp_path, port, 'tls_cert = "ca.pem"\ntls_key = "server.key"\n')
    settings = load_collector(cfg)
    with pytest.raises(StartupError, match="TLS"):
        ApiServer(
            make_app(ApiContext(settings.store_path)),
            f"{settings.path}: api",
            "127.0.0.1",
            port,
            settings.api_tls,
        )


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('tls_cert = "server.pem"\n', "tls_cert and tls_key go together"),
        ('client_ca = "ca.pem"\n', "mutual TLS needs tls_cert"),
        ('tls_cert = "nope.pem"\ntls_key = "server.key"\n', "nope.pem"),
    ],
)
def test_tls_settings_are_checked(tmp_path: Path, extra: str, problem: str) -> None:
    from hostlib.errors import ConfigError

    write_pki(tmp_path)
    with pytest.raises(ConfigError, match=problem):
        load_collector(config(tmp_path, 8443, extra))
