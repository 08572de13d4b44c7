"""Our Mosquitto password hashes are byte for byte what ``mosquitto_passwd`` writes for the
same salt (a real broker accepting them is tested in ``tests/traceedge/test_broker_wall.py``)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from hostlib.mqttpasswd import hash_password, new_password
from traceedge.brokers import MOSQUITTO_HINT


def mosquitto_passwd() -> str:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        pytest.fail(f"mosquitto_passwd not found: {MOSQUITTO_HINT}", pytrace=False)
    return exe


@pytest.mark.parametrize("password", ["s3cret", new_password(), "pässwörd with spaces"])
def test_same_hash_as_mosquitto_passwd(tmp_path: Path, password: str) -> None:
    pw_file = tmp_path / "passwd"
    subprocess.run(
        [mosquitto_passwd(), "-c", "-b", str(pw_file), "dev-1", password], check=True, timeout=30
    )
    user, theirs = pw_file.read_text().strip().split(":", 1)
    assert user == "dev-1"
    _, seven, iterations, salt, _ = theirs.split("$")
    assert seven == "7"
    assert hash_password(password, base64.b64decode(salt), int(iterations)) == theirs


def test_fresh_salt_and_random_passwords() -> None:
    a, b = new_password(), new_password()
    assert a != b and len(a) == 32
    assert hash_password(a) != hash_password(a)
    assert hash_password(a).startswith("$7$101$")
