"""The fleet's state file: each run a new boot continuing the sequence, numbers reserved
before a run, other devices' entries kept, a broken file refused in words, one run at a
time. (``tests/traceedge/test_fleet_cli.py`` runs it against the real chain.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hostlib.errors import ConfigError
from simulators.fleet_state import FleetState, default_path


def test_the_default_state_file_sits_beside_the_registry(tmp_path: Path) -> None:
    reg = tmp_path / "registry" / "devices.json"
    assert default_path(reg) == tmp_path / "registry" / "devices.fleet-state.json"


def test_a_run_reserves_its_numbers_then_records_where_it_stopped(tmp_path: Path) -> None:
    st = FleetState(tmp_path / "state.json")
    with st.locked():
        start = st.begin(["A", "B"], 100)
        assert start == {"A": (0, 1), "B": (0, 1)}  # first run: seq 0 used, boot 1
        assert st.load() == {"A": (100, 1), "B": (100, 1)}  # a SIGKILL now: next starts past
        st.save({"A": (51, 1), "B": (49, 1)})
    with st.locked():
        assert st.begin(["A", "B"], 10) == {"A": (51, 2), "B": (49, 2)}


def test_devices_a_run_does_not_drive_keep_their_entries(tmp_path: Path) -> None:
    st = FleetState(tmp_path / "state.json")
    with st.locked():
        st.save({"A": (7, 3), "B": (9, 1)})
        assert st.begin(["B", "C"], 5) == {"B": (9, 2), "C": (0, 1)}
        st.save({"B": (11, 2), "C": (2, 1)})
    assert st.load() == {"A": (7, 3), "B": (11, 2), "C": (2, 1)}
    data = json.loads((tmp_path / "state.json").read_text())
    assert data == {
        "devices": {
            "A": {"seq": 7, "boot": 3},
            "B": {"seq": 11, "boot": 2},
            "C": {"seq": 2, "boot": 1},
        }
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("state.json.")] == [
        "state.json.lock"
    ]  # no temporary file left behind


@pytest.mark.parametrize("text", ["{", "[]", '{"devices": {"A": {"seq": "x", "boot": 1}}}'])
def test_a_broken_state_file_is_refused_not_rebuilt(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="not a fleet state file"):
        FleetState(path).load()
    assert path.read_text() == text


def test_one_run_at_a_time_the_second_is_told_who_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    holder = f"another fleet run \\(pid {os.getpid()}\\)"

    def another_run() -> None:
        with FleetState(path).locked():
            pass

    with FleetState(path).locked(), pytest.raises(ConfigError, match=holder):
        another_run()
    another_run()  # free again once the first has finished
