"""``traceedge collector migrate`` against a real PostgreSQL database, and the config rules
of ``[store]``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from collector import pgschema
from collector.pgstore import schema_version
from collector.settings import load_collector
from hostlib.errors import ConfigError
from traceedge.cli import main

BASE = """
[collector]
data_dir = "data"
registry = "devices.json"
command_key = "command.key"
client_id = "c1"

[broker]
host = "127.0.0.1"
port = 1883
"""


def _config(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "collector.toml"
    p.write_text(BASE + extra, encoding="utf-8")
    return p


def test_migrate_applies_each_migration_once(tmp_path: Path, pg_url: str) -> None:
    cfg = _config(tmp_path, f'\n[store]\nurl = "{pg_url}"\n')
    runner = CliRunner()
    check = runner.invoke(main, ["collector", "migrate", "--config", str(cfg), "--check"])
    assert check.exit_code == 3, check.output
    assert "schema version 0" in check.output
    first = runner.invoke(main, ["collector", "migrate", "--config", str(cfg)])
    assert first.exit_code == 0, first.output
    assert f"applied {len(pgschema.MIGRATIONS)} migration(s)" in first.output
    assert schema_version(pg_url) == pgschema.LATEST
    again = runner.invoke(main, ["collector", "migrate", "--config", str(cfg)])
    assert again.exit_code == 0 and "applied 0 migration(s)" in again.output
    check = runner.invoke(main, ["collector", "migrate", "--config", str(cfg), "--check"])
    assert check.exit_code == 0, check.output


def test_migrate_on_a_sqlite_store_says_there_is_nothing_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["collector", "migrate", "--config", str(_config(tmp_path, ""))]
    )
    assert result.exit_code == 0 and "nothing to migrate" in result.output


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    cfg = _config(tmp_path, '\n[store]\nurl = "postgresql://postgres@127.0.0.1:1/none"\n')
    result = CliRunner().invoke(main, ["collector", "migrate", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "postgresql://postgres@127.0.0.1:1/none" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('\n[store]\nurl = "mysql://x"\n', "store.url"),
        ('\n[store]\nurl = "postgresql://x/db"\npool_size = 0\n', "store.pool_size"),
        ('\n[store]\nurl = "postgresql://x/db"\n\n[api]\nport = 8080\n', "api.port"),
        ('\n[store]\nurl = "postgresql://x/db"\nnope = 1\n', "store.nope"),
    ],
)
def test_store_settings_are_checked(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_collector(_config(tmp_path, extra), files=False)
    assert key in str(exc.value)
