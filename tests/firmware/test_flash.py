"""``traceedge device flash``: the files a board gets come from the app's manifest, the
mpremote invocation copies exactly those, and each manifest alone is enough to import
its app under the real MicroPython interpreter."""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.firmware import mpy_fw
from traceedge.cli.dev_flash import APP_TYPES, FIRMWARE, board_files, register
from traceedge.provision import device_config, new_device


def group() -> click.Group:
    @click.group()
    def device() -> None:
        """Devices."""

    register(device)
    return device


def configs(tmp_path: Path, dev_type: str = "cylinder-reader") -> tuple[Path, Path]:
    cfg = tmp_path / "dev.json"
    cfg.write_text(json.dumps(device_config(new_device(dev_type, "S1"), "192.168.4.1", 1883)))
    return cfg, FIRMWARE / "apps" / "cylinder" / "app.example.json"


def test_dry_run_lists_the_manifest_and_the_command(tmp_path: Path) -> None:
    cfg, app_cfg = configs(tmp_path)
    res = CliRunner().invoke(
        group(),
        [
            "flash",
            "--app",
            "cylinder",
            "--config",
            str(cfg),
            "--app-config",
            str(app_cfg),
            "--port",
            "/dev/ttyUSB0",
            "--dry-run",
        ],
    )
    assert res.exit_code == 0, res.output
    listed = dict(line.split("\t") for line in res.output.splitlines() if "\t" in line)
    want = {f.dest for f in board_files("cylinder")} | {"config.json", "app.json"}
    assert set(listed) == want
    assert {
        "main.py",
        "lib/te/flashlog.py",
        "lib/wire/envelope.py",
        "lib/wire/auth.py",
        "lib/cylinder.py",
        "lib/drivers/codecs/sics.py",
        "lib/drivers/codecs/chafon.py",
    } <= want
    assert "lib/settlement.py" not in want and "lib/wire/tracecode.py" not in want
    assert all(Path(src).is_file() for src in listed.values())
    cmd = shlex.split(res.output.split("# command:\n", 1)[1])
    assert cmd[:4] == ["mpremote", "connect", "/dev/ttyUSB0", "exec"]
    assert "os.mkdir(d)" in cmd[4] and "'lib/drivers/codecs'" in cmd[4]
    assert cmd[-2:] == ["+", "reset"]
    copies = [cmd[i + 2 : i + 4] for i in range(len(cmd)) if cmd[i : i + 2] == ["fs", "cp"]]
    assert {dst[1:] for _, dst in copies} == want
    assert [src for src, dst in copies if dst == ":config.json"] == [str(cfg.resolve())]


def test_flash_runs_mpremote_once(tmp_path: Path) -> None:
    log = tmp_path / "argv.json"
    fake = tmp_path / "mpremote"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    cfg, app_cfg = configs(tmp_path)
    res = CliRunner().invoke(
        group(),
        [
            "flash",
            "--app",
            "cylinder",
            "--config",
            str(cfg),
            "--app-config",
            str(app_cfg),
            "--mpremote",
            str(fake),
        ],
    )
    assert res.exit_code == 0, res.output
    argv = log.read_text().splitlines()
    assert argv[:3] == ["connect", "auto", "exec"] and argv[-1] == "reset"
    assert argv.count("cp") == len(board_files("cylinder")) + 2


def test_flash_refuses_mismatched_configs(tmp_path: Path) -> None:
    cfg, app_cfg = configs(tmp_path, "elevator-box")
    res = CliRunner().invoke(
        group(),
        [
            "flash",
            "--app",
            "cylinder",
            "--config",
            str(cfg),
            "--app-config",
            str(app_cfg),
            "--dry-run",
        ],
    )
    assert res.exit_code != 0 and "is not a cylinder-reader" in res.output
    res = CliRunner().invoke(
        group(),
        [
            "flash",
            "--app",
            "cylinder",
            "--config",
            str(cfg),
            "--app-config",
            str(app_cfg),
            "--mpremote",
            "definitely-not-installed-mpremote",
        ],
    )
    assert res.exit_code != 0


def test_missing_mpremote_says_how_to_install(tmp_path: Path) -> None:
    cfg, app_cfg = configs(tmp_path)
    res = CliRunner().invoke(
        group(),
        [
            "flash",
            "--app",
            "cylinder",
            "--config",
            str(cfg),
            "--app-config",
            str(app_cfg),
            "--mpremote",
            "definitely-not-installed-mpremote",
        ],
    )
    assert res.exit_code != 0 and "pip install mpremote" in res.output


@pytest.mark.parametrize("app", sorted(APP_TYPES))
def test_each_manifest_alone_is_enough_to_boot_its_app(app: str, tmp_path: Path) -> None:
    """With only the app's board files (plus the simulated ``machine`` and card reader),
    ``main.py`` boots the app from /config.json and /app.json through its first poll.
    ``te.net`` is swapped for an offline stand-in: the WebAssembly port has no sockets."""
    files = [(str(f.src), "/" + f.dest) for f in board_files(app)]
    sim = FIRMWARE / "sim" / "tesim"
    files += [
        (str(sim / n), "/sim/tesim/" + n)
        for n in ("__init__.py", "machine.py", "world.py", "mfrc522sim.py")
    ]
    files.append((str(mpy_fw.MP_TESTS / "offline_net.py"), "/sim/offline_net.py"))
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(device_config(new_device(APP_TYPES[app], "S1"), "127.0.0.1", 1)))
    files += [
        (str(cfg), "/config.json"),
        (str(FIRMWARE / "apps" / app / "app.example.json"), "/app.json"),
    ]
    code = (
        "import sys\nimport tesim\ntesim.install()\n"
        "import offline_net\nsys.modules['te.net'] = offline_net\n"
        "from tesim import world\nfrom tesim.mfrc522sim import Mfrc522Sim\n"
        "world.WORLD.attach_spi(1, Mfrc522Sim(15))\n"
        "from te.runtime import Runtime\n"
        "Runtime.run = lambda self, period_ms=10: print('BOOTED', self.app.name, "
        "self.rec.boot, self.poll())\n"
        "import main\n"
    )
    spec = {
        "files": files,
        "path": ["/lib", "/sim"],
        "code": code,
        "async": False,
        "heap": 16 << 20,
    }
    try:
        rc, out = mpy_fw.run(spec)
    except mpy_fw.MissingTool as exc:
        pytest.fail(str(exc), pytrace=False)
    assert rc == 0 and f"BOOTED {app} 1 None" in out, out
