"""``traceedge collector token``, ``audit`` and ``import-sites`` as an administrator uses them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from collector.api import ApiContext, make_app
from traceedge.cli import main


def setup(tmp_path: Path) -> tuple[Path, Path]:
    res = CliRunner().invoke(main, ["collector", "keygen", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        '[collector]\ndata_dir = "data"\nregistry = "devices.json"\ncommand_key = "command.key"\n'
    )
    return cfg, tmp_path / "data" / "collector.sqlite"


def cli(cfg: Path, *args: str) -> Result:
    group, rest = (args[0], args[1:]) if args[0] in ("token", "audit") else (None, args)
    argv = ["collector", *([group] if group else []), rest[0], "--config", str(cfg), *rest[1:]]
    return CliRunner().invoke(main, argv)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_token_made_on_the_command_line_opens_the_api_until_revoked(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    cfg, store = setup(tmp_path)
    url = None
    if kind == "postgres":  # the same commands on a collector whose [store] url names one
        url = request.getfixturevalue("pg_url")
        with cfg.open("a") as f:
            f.write(f'\n[store]\nurl = "{url}"\n')
    res = cli(cfg, "token", "create", "--role", "inspector", "--scope", "all", "--name", "Li Na")
    if kind == "postgres":  # not migrated yet: a clear error, nothing made
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert cli(cfg, "migrate").exit_code == 0
        res = cli(
            cfg, "token", "create", "--role", "inspector", "--scope", "all", "--name", "Li Na"
        )
    assert res.exit_code == 0, res.output
    token = res.stdout.strip().splitlines()[-1]
    assert token.startswith("te_")
    api = TestClient(make_app(ApiContext(store, store_url=url)))
    ok = api.get("/stats", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    listed = cli(cfg, "token", "list")
    assert "inspector" in listed.output and "Li Na" in listed.output
    assert token.split("_", 2)[2] not in listed.output  # never the secret
    tid = token.split("_")[1]
    assert cli(cfg, "token", "revoke", tid).exit_code == 0
    assert api.get("/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "revoked" in cli(cfg, "token", "list").output
    verified = cli(cfg, "audit", "verify", "--key", str(tmp_path / "command.pub"))
    assert verified.exit_code == 0 and "intact: 2 entries" in verified.output, verified.output
    assert "token.revoke" in cli(cfg, "audit", "show").output
    assert store.exists() == (kind == "sqlite")


def test_a_scope_the_role_cannot_hold_is_a_usage_error(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path)
    res = cli(cfg, "token", "create", "--role", "operator", "--scope", "all", "--name", "x")
    assert res.exit_code == 2 and "market:CODE" in res.output


def test_audit_verify_passes_then_names_the_edited_entry(tmp_path: Path) -> None:
    cfg, store = setup(tmp_path)
    for name in ("a", "b", "c"):
        assert cli(cfg, "token", "create", "--role", "admin", "--name", name).exit_code == 0
    good = cli(cfg, "audit", "verify", "--key", str(tmp_path / "command.pub"))
    assert good.exit_code == 0, good.output
    assert "intact: 3 entries" in good.output and "signature verified" in good.output
    shown = cli(cfg, "audit", "show")
    assert shown.output.count("token.create") == 3 and "cli:" in shown.output
    db = sqlite3.connect(store)
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET actor = 'someone else' WHERE id = 2")
    db.commit()
    db.close()
    bad = cli(cfg, "audit", "verify")
    assert bad.exit_code == 1 and "BROKEN at entry 2" in bad.output


def test_import_sites_from_csv_all_or_nothing_and_audited(tmp_path: Path) -> None:
    cfg, store = setup(tmp_path)
    good = tmp_path / "sites.csv"
    good.write_text(
        "site,name,district,kind,market,address,phone\n"
        "S001,杭州四季青农贸市场,330106,market,M330106001,文三路 90 号,0571-88880000\n"
        "S002,城西液化气充装站,330106,filling-station,,,\n",
        encoding="utf-8",
    )
    res = cli(cfg, "import-sites", str(good))
    assert res.exit_code == 0 and "imported 2 sites" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("site,name,district\nS003,ok,330106\nS 4,bad,330106\n", encoding="utf-8")
    res = cli(cfg, "import-sites", str(bad))
    assert res.exit_code == 1 and "site row 1" in res.output and "nothing imported" in res.output
    db = sqlite3.connect(store)
    assert [r[0] for r in db.execute("SELECT site FROM sites ORDER BY site")] == ["S001", "S002"]
    db.close()
    shown = cli(cfg, "audit", "show", "--action", "import.sites", "--json")
    assert shown.output.count('"import.sites"') == 1 and "sha256" in shown.output


def test_device_revoke_with_a_collector_config_is_audited(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path)
    reg = tmp_path / "devices.json"
    res = CliRunner().invoke(
        main,
        ["device", "provision", "--type", "cylinder-reader", "--site", "S1",
         "--out", str(tmp_path / "d"), "--registry", str(reg)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    dev = res.output.split()[0]
    res = CliRunner().invoke(
        main,
        ["device", "revoke", dev, "--registry", str(reg), "--config", str(cfg),
         "--reason", "reader stolen"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    shown = cli(cfg, "audit", "show", "--json")
    assert '"device.revoke"' in shown.output and "reader stolen" in shown.output
    assert cli(cfg, "audit", "verify", "--key", str(tmp_path / "command.pub")).exit_code == 0
