"""The device registry: key rotation by sequence, revocation, and a registry file that
breaks or disappears never changing who is trusted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostlib.errors import ConfigError
from hostlib.registry import Device, Registry, add_devices, revoke, rotate_key

K1, K2, K3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


def _registry(tmp_path: Path) -> Path:
    path = tmp_path / "devices.json"
    add_devices(path, [Device("D1", K1, "market-scale", "S1")], provisioned=1)
    return path


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_rotated_keys_apply_from_their_sequence_on(tmp_path: Path) -> None:
    path = _registry(tmp_path)
    rotate_key(path, "D1", K2, from_seq=100, at=5)
    rotate_key(path, "D1", K3, from_seq=250, at=6)
    d = Registry(path).get("D1")
    assert d is not None
    assert d.key == K3
    assert [d.key_for(s) for s in (1, 99, 100, 249, 250, 10**9)] == [K1, K1, K2, K2, K3, K3]
    assert d.recent_keys() == [K3, K2]
    with pytest.raises(ConfigError, match="from_seq must be > 250"):
        rotate_key(path, "D1", K1, from_seq=200, at=7)


def test_a_revoked_device_is_refused_from_its_revocation_point(tmp_path: Path) -> None:
    path = _registry(tmp_path)
    revoke(path, "D1", from_seq=42, at=9, reason="stolen")
    d = Registry(path).get("D1")
    assert d is not None and d.accepts(41) and not d.accepts(42)
    assert d.key_for(10) == K1  # history stays: earlier records still verify
    with pytest.raises(ConfigError, match="revoked"):
        rotate_key(path, "D1", K2, from_seq=50, at=10)


def test_a_broken_or_deleted_file_keeps_the_last_good_registry(tmp_path: Path) -> None:
    path = _registry(tmp_path)
    reg = Registry(path)
    assert reg.problem is None
    path.write_text('{"devices": {"D1": {"key": "zz"', encoding="utf-8")  # mid hand-edit
    _touch_later(path)
    reg.reload()
    assert reg.get("D1") is not None and reg.get("D1").key == K1  # type: ignore[union-attr]
    assert reg.problem is not None and "last good registry" in reg.problem
    path.unlink()
    reg.reload()
    assert reg.get("D1") is not None
    assert reg.problem is not None and "missing" in reg.problem
    add_devices(path, [Device("D2", K2, "gateway", "S1")], provisioned=2)
    reg.reload()
    assert reg.problem is None and reg.get("D2") is not None and reg.get("D1") is None


def test_a_broken_file_at_start_up_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a device registry"):
        Registry(path)
