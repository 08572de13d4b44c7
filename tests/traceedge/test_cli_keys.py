"""``traceedge collector keygen``, ``device rotate-key``, ``device revoke`` and the id rules
provisioning enforces, through the real command line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner

from hostlib.registry import Registry
from traceedge.cli import main
from wire.command import load_private_key, load_public_key


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output


def test_keygen_writes_a_private_key_only_its_owner_reads_and_keeps_it(tmp_path: Path) -> None:
    code, out = run("collector", "keygen", "--out", str(tmp_path))
    assert code == 0, out
    key, pub = tmp_path / "command.key", tmp_path / "command.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert load_private_key(key).public_key() == load_public_key(pub)
    before = key.read_bytes()
    assert run("collector", "keygen", "--out", str(tmp_path))[0] == 0
    assert key.read_bytes() == before  # never overwritten


def test_rotate_and_revoke_by_sequence(tmp_path: Path) -> None:
    reg = tmp_path / "devices.json"
    code, out = run(
        "device", "provision", "--type", "market-scale", "--site", "M1",
        "--out", str(tmp_path / "d"), "--registry", str(reg),
    )  # fmt: skip
    assert code == 0, out
    dev = out.split()[0]
    old = Registry(reg).get(dev)
    assert old is not None
    code, out = run("device", "rotate-key", dev, "--registry", str(reg), "--out", str(tmp_path))
    assert code != 0 and "--from-seq" in out  # no store to ask: a number is required
    code, out = run(
        "device", "rotate-key", dev, "--registry", str(reg), "--from-seq", "500",
        "--out", str(tmp_path / "new"),
    )  # fmt: skip
    assert code == 0, out
    cfg_path = tmp_path / "new" / f"{dev}.json"
    assert stat.S_IMODE(cfg_path.stat().st_mode) == 0o600
    cfg = json.loads(cfg_path.read_text())
    d = Registry(reg).get(dev)
    assert d is not None and d.key_for(499) == old.key and d.key_for(500) != old.key
    assert cfg["key"] == d.key.hex() and cfg["keys"] == [[1, old.key.hex()], [500, d.key.hex()]]
    code, out = run(
        "device", "revoke", dev, "--registry", str(reg), "--from-seq", "700", "--reason", "lost"
    )
    assert code == 0 and "revoked from seq 700" in out
    d = Registry(reg).get(dev)
    assert d is not None and d.accepts(699) and not d.accepts(700)
    code, out = run(
        "device", "rotate-key", dev, "--registry", str(reg), "--from-seq", "900",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code != 0 and "revoked" in out and "Traceback" not in out


def test_provisioning_refuses_bad_site_codes_before_writing(tmp_path: Path) -> None:
    reg = tmp_path / "devices.json"
    for site in ("../../etc", "a/b", "S 1", "#", "", "..", "X" * 21):
        code, out = run(
            "device", "provision", "--type", "gateway", "--site", site,
            "--out", str(tmp_path / "out"), "--registry", str(reg),
        )  # fmt: skip
        assert code != 0, site
        assert "site code" in out and "Traceback" not in out
    assert not reg.exists() and not (tmp_path / "out").exists()
