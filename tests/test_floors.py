"""The floors hold: each package imports only the floors beneath it, no import cycles, and
the firmware only what is on its board. The rules and why ``drivers/codecs/`` may import
``wire/`` are in :mod:`tests.floors`; the checker is tried on small trees here too, so a
broken rule is known to fail the test, not only believed to."""

from __future__ import annotations

from pathlib import Path

from tests.floors import (
    ALLOWED_BREAKS,
    FIRMWARE_DIR,
    Violation,
    check_firmware,
    check_floors,
    find_cycles,
    host_imports,
    host_modules,
    unknown_packages,
)
from traceedge.cli.dev_flash import APP_TYPES, board_files

REPO = Path(__file__).resolve().parents[1]


def listing(violations: list[Violation]) -> str:
    return "\n".join(map(str, violations))


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def floors(root: Path) -> list[str]:
    bad, _ = check_floors(host_imports(root))
    return [str(v) for v in bad]


def cycles(root: Path) -> list[str]:
    return [str(v) for v in find_cycles(host_imports(root), host_modules(root))]


# -- this repository ---------------------------------------------------------------------


def test_every_package_imports_only_the_floors_beneath_it() -> None:
    bad, met = check_floors(host_imports(REPO), ALLOWED_BREAKS)
    assert not bad, "imports that break a floor:\n" + listing(bad)
    stale = sorted(ALLOWED_BREAKS - met)
    assert not stale, f"mended, so delete these from tests/floors.py ALLOWED_BREAKS: {stale}"


def test_every_top_level_package_has_a_floor() -> None:
    assert unknown_packages(REPO) == [], "add the package to FLOORS in tests/floors.py"


def test_no_import_cycles() -> None:
    found = find_cycles(host_imports(REPO), host_modules(REPO))
    assert not found, listing(found)


def test_the_firmware_imports_only_what_its_boards_carry() -> None:
    boards = {app: {f.dest: f.src for f in board_files(app)} for app in APP_TYPES}
    assert all(boards.values())
    bad = check_firmware(REPO, boards)
    assert not bad, "firmware imports that would fail:\n" + listing(bad)


# -- the checker, on trees made to break it ----------------------------------------------


def test_an_upward_import_is_reported_with_file_line_and_rule(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "wire/__init__.py": "",
            "wire/x.py": '"""A wire module."""\n\nimport os\n\nimport collector\n',
            "collector/__init__.py": "",
        },
    )
    assert floors(root) == ["wire/x.py:5: wire.x imports collector: wire/ imports nothing of ours"]


def test_imports_in_functions_type_guards_and_relative_ones_count(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "drivers/__init__.py": "",
            "drivers/codecs/__init__.py": "from .errors import E\n",
            "drivers/codecs/errors.py": "class E(Exception):\n    pass\n",
            "drivers/codecs/x.py": (
                "from typing import TYPE_CHECKING\n"
                "\n"
                "from . import errors\n"
                "from ..transports import port\n"
                "\n"
                "if TYPE_CHECKING:\n"
                "    from hostlib.config import Section\n"
                "\n"
                "\n"
                "def f() -> None:\n"
                "    import edge_agent.outbox\n"
            ),
            "drivers/transports/__init__.py": "",
            "drivers/transports/port.py": "from wire import topics\n",
            "hostlib/__init__.py": "",
            "hostlib/config.py": "",
            "edge_agent/__init__.py": "",
            "edge_agent/outbox.py": "",
            "wire/__init__.py": "",
            "wire/topics.py": "",
        },
    )
    rule = "drivers/codecs/ imports only wire/"
    assert floors(root) == [
        f"drivers/codecs/x.py:4: drivers.codecs.x imports drivers.transports.port: {rule}",
        "drivers/codecs/x.py:7: drivers.codecs.x imports hostlib.config"
        f" (under a type-checking guard): {rule}",
        f"drivers/codecs/x.py:11: drivers.codecs.x imports edge_agent.outbox: {rule}",
        "drivers/transports/port.py:1: drivers.transports.port imports wire.topics:"
        " drivers/transports/ imports only drivers/codecs/",
    ]


def test_the_cross_cutting_rules_name_themselves(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "edge_agent/__init__.py": "from collector import store\n",
            "collector/__init__.py": "",
            "collector/store.py": "import simulators.fleet\n",
            "simulators/__init__.py": "",
            "simulators/fleet.py": "from traceedge.cli import main\n",
            "traceedge/__init__.py": "",
            "traceedge/cli.py": "from tests import conftest\n",
            "tests/__init__.py": "",
            "tests/conftest.py": "import traceedge.cli\nimport simulators.fleet\n",
        },
    )
    assert floors(root) == [
        "collector/store.py:1: collector.store imports simulators.fleet:"
        " product code never imports simulators/",
        "edge_agent/__init__.py:1: edge_agent imports collector.store:"
        " edge_agent/ and collector/ never import each other",
        "simulators/fleet.py:1: simulators.fleet imports traceedge.cli:"
        " nothing but tests/ and bench/ imports traceedge/ (the top floor)",
        "traceedge/cli.py:1: traceedge.cli imports tests.conftest:"
        " nothing but tests/ and bench/ imports tests/",
    ]


def test_an_allowed_break_is_passed_and_seen(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "hostlib/__init__.py": "",
            "hostlib/a.py": "import collector\n",
            "collector/__init__.py": "",
        },
    )
    allowed = frozenset({("hostlib/a.py", "collector"), ("hostlib/b.py", "collector")})
    bad, met = check_floors(host_imports(root), allowed)
    assert bad == [] and met == {("hostlib/a.py", "collector")}


def test_a_new_package_without_a_floor_is_named(tmp_path: Path) -> None:
    root = tree(tmp_path, {"wire/__init__.py": "", "platformlib/__init__.py": ""})
    assert unknown_packages(root) == ["platformlib"]


def test_an_import_cycle_is_reported_hop_by_hop(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "hostlib/__init__.py": "",
            "hostlib/a.py": "from hostlib import b\n",
            "hostlib/b.py": '"""B."""\n\nimport hostlib.c\n',
            "hostlib/c.py": "from hostlib.a import A\n\nA = 1\n",
            "hostlib/d.py": "from hostlib import a\n",  # leads into the cycle, not part of it
        },
    )
    assert cycles(root) == [
        "hostlib/a.py:1: import cycle: hostlib.a (hostlib/a.py:1) → hostlib.b (hostlib/b.py:3)"
        " → hostlib.c (hostlib/c.py:1) → hostlib.a; move the shared part down a floor or"
        " import it where it is used"
    ]


def test_a_cycle_broken_by_a_function_level_or_type_only_import_is_none(tmp_path: Path) -> None:
    base = {
        "hostlib/__init__.py": "",
        "hostlib/a.py": "from hostlib import b\n",
    }
    late = tree(tmp_path / "late", {**base, "hostlib/b.py": "def f():\n    import hostlib.a\n"})
    typed = tree(
        tmp_path / "typed",
        {
            **base,
            "hostlib/b.py": "import typing\n\nif typing.TYPE_CHECKING:\n    import hostlib.a\n",
        },
    )
    assert cycles(late) == [] and cycles(typed) == []
    # the floors still see both imports
    both = tree(tmp_path / "both", {**base, "hostlib/b.py": "import hostlib.a\n"})
    assert len(cycles(both)) == 1


def test_firmware_imports_outside_its_world_are_reported(tmp_path: Path) -> None:
    fw = FIRMWARE_DIR
    root = tree(
        tmp_path,
        {
            f"{fw}/lib/te/__init__.py": "",
            f"{fw}/lib/te/hal.py": "import machine\n\n_TYPING = False\nif _TYPING:\n"
            "    from typing import Any\n",
            f"{fw}/lib/te/bad.py": "from typing import Any\nimport js\nimport collector.store\n",
            f"{fw}/sim/tesim/__init__.py": "import js\nfrom te import hal\n",
            f"{fw}/apps/demo/demo.py": "from te import hal\nimport wire.mac\n",
            f"{fw}/apps/demo/manifest.py": "module('demo.py')\n",
            "wire/__init__.py": "",
            "wire/mac.py": (
                "import hashlib\n\ntry:\n    from hmac import digest\n"
                "except ImportError:\n    digest = None\n"
            ),
        },
    )
    board = {
        "lib/te/__init__.py": root / fw / "lib/te/__init__.py",
        "lib/demo.py": root / fw / "apps/demo/demo.py",
        "lib/wire/__init__.py": root / "wire/__init__.py",
        "lib/wire/mac.py": root / "wire/mac.py",
    }
    got = [str(v) for v in check_firmware(root, {"demo": board})]
    world = "the host modules a manifest copies onto the board, and MicroPython's modules"
    assert got == [
        f"{fw}/lib/te/bad.py:1: te.bad imports typing: typing exists only for the type checker:"
        " import it under `if _TYPING:`",
        f"{fw}/lib/te/bad.py:2: te.bad imports js: the firmware imports only its own modules, "
        + world,
        f"{fw}/lib/te/bad.py:3: te.bad imports collector.store: the firmware imports only its"
        " own modules, " + world,
        f"{fw}/apps/demo/demo.py:1: on the demo board demo imports te.hal, which is neither"
        f" copied there ({fw}/apps/demo/manifest.py) nor a MicroPython module",
    ]
