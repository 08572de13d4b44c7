"""The wire contract under the real MicroPython interpreter reproduces the golden vectors."""

import json

from tests.mpy import REPO, repo_files, run_micropython
from tests.wire import mp_vectors


def test_vectors_under_cpython() -> None:
    assert mp_vectors.run(str(REPO / "config/vectors/wire.json")) == 18


def test_vectors_under_micropython() -> None:
    n = len(json.loads((REPO / "config/vectors/wire.json").read_text()))
    out = run_micropython(
        "from tests.wire import mp_vectors\nmp_vectors.run('/repo/config/vectors/wire.json')\n",
        [
            *repo_files("wire/canonical.py", "wire/envelope.py", "wire/limits.py", "wire/mac.py"),
            "tests/wire/mp_vectors.py",
            "config/vectors/wire.json",
        ],
    )
    assert f"mp_vectors: {n} vectors passed" in out, out
