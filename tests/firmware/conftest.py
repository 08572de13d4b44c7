"""The ``chain`` fixture of the firmware's end-to-end runs: one site's chain of real
processes per call (one device of each type), stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Chain, make_chain, stop_chain


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Callable[..., Chain]]:
    made: list[Chain] = []

    def make(**kw: Any) -> Chain:
        c = make_chain(tmp_path / f"chain{len(made)}", devices_per_type=1, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        stop_chain(c)
