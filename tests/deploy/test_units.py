"""The systemd units in ``deploy/`` are valid and hardened, and the user and folders they
run with are made as written: checked by systemd's own tools (``systemd-analyze verify``
and ``security``, ``systemd-sysusers`` and ``systemd-tmpfiles`` into a scratch root), not
by reading the files back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = (
    "traceedge-agent.service",
    "traceedge-collector@.service",
    "traceedge-platform.service",
    "traceedge-terminal.service",
)
NOTIFYING = ("traceedge-agent.service", "traceedge-collector@.service")
INSTALLED = "/opt/traceedge/bin/traceedge"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 is locked down, 10 is wide open

HARDENING = {
    "User": "traceedge",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/traceedge",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
    "Restart": "on-failure",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's systemd package", pytrace=False)
    return path


def service_keys(unit: Path) -> dict[str, list[str]]:
    """The [Service] section's keys and their values, in order."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def as_here(unit: str, folder: Path) -> Path:
    """``unit`` copied into ``folder`` with ExecStart running this checkout's traceedge (an
    instance name for the template): verify checks that the command exists."""
    here = Path(sys.executable).with_name("traceedge")
    if not here.exists():
        pytest.fail(f"{here} missing: install the project (pip install -e .)", pytrace=False)
    text = (DEPLOY / unit).read_text()
    assert INSTALLED in text, f"{unit} does not run {INSTALLED}"
    out = folder / unit.replace("@.", "@1.")
    out.write_text(text.replace(INSTALLED, str(here)))
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify_finds_nothing(unit: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [tool("systemd-analyze"), "verify", str(as_here(unit, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # an unknown or misspelt key is only a warning to systemd: any output fails here
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_units_carry_the_hardening_and_rate_low_in_systemd_analyze_security(
    unit: str, tmp_path: Path
) -> None:
    keys = service_keys(DEPLOY / unit)
    for k, v in HARDENING.items():
        assert v in keys.get(k, []), f"{unit}: {k}={v} missing (has {keys.get(k)})"
    res = subprocess.run(
        [tool("systemd-analyze"), "security", "--offline=yes", str(as_here(unit, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", res.stdout)
    assert found, res.stdout + res.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, res.stdout


@pytest.mark.parametrize("unit", NOTIFYING)
def test_agent_and_collector_units_use_notify_and_the_watchdog(unit: str) -> None:
    keys = service_keys(DEPLOY / unit)
    assert keys["Type"] == ["notify"]
    assert keys["NotifyAccess"] == ["main"]
    # the processes ping once a second: the watchdog leaves room for a loaded machine
    assert re.fullmatch(r"\d+s", keys["WatchdogSec"][0]), keys["WatchdogSec"]
    assert int(keys["WatchdogSec"][0][:-1]) >= 10
    assert "--log-format json" in keys["ExecStart"][0]


def test_collector_template_gives_each_instance_its_own_config() -> None:
    exec_start = service_keys(DEPLOY / "traceedge-collector@.service")["ExecStart"][0]
    assert "--config /etc/traceedge/collector-%i.toml" in exec_start


def test_sysusers_and_tmpfiles_make_the_user_and_the_only_writable_folders(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.fail("systemd-tmpfiles sets owners: run this test as root", pytrace=False)
    root = tmp_path / "root"
    for kind, src in (("sysusers.d", "traceedge.sysusers"), ("tmpfiles.d", "traceedge.tmpfiles")):
        (root / "usr/lib" / kind).mkdir(parents=True)
        shutil.copy(DEPLOY / src, root / "usr/lib" / kind / "traceedge.conf")
    (root / "etc").mkdir()
    for cmd in (["systemd-sysusers"], ["systemd-tmpfiles", "--create"]):
        res = subprocess.run(
            [tool(cmd[0]), *cmd[1:], f"--root={root}"], capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0, res.stdout + res.stderr
    passwd = (root / "etc/passwd").read_text().splitlines()
    user = next(line.split(":") for line in passwd if line.startswith("traceedge:"))
    uid, gid, shell = int(user[2]), int(user[3]), user[6]
    assert 0 < uid < 1000 and shell.endswith("nologin"), user  # a system user, no login
    data = root / "var/lib/traceedge"
    for d in (data, *(data / r for r in ("agent", "collector", "platform", "terminal"))):
        st = d.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (uid, 0o750), d
    etc = (root / "etc/traceedge").stat()
    assert (etc.st_uid, etc.st_gid, etc.st_mode & 0o777) == (0, gid, 0o750)
    # what the units may write is what tmpfiles makes
    for unit in UNITS:
        assert service_keys(DEPLOY / unit)["ReadWritePaths"] == ["/var/lib/traceedge"]
