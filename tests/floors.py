"""The floors, read from the source with ``ast``: which of our packages may import which.

Every ``import x`` and ``from x import y`` counts, wherever it stands: at module level, in a
function, under ``if TYPE_CHECKING:`` (a floor broken only for the type checker is still
broken). Relative imports are resolved against the importing module's package, and
``from pkg import name`` means the module ``pkg.name`` when that file exists, else ``pkg``.

The host floors, bottom up (``FLOORS`` holds them as data)::

    wire/                 nothing of ours
    drivers/codecs/       wire/
    drivers/transports/   drivers/codecs/
    hostlib/              wire/
    edge_agent/           hostlib/, wire/, drivers/         never collector/
    collector/            hostlib/, wire/, drivers/         never edge_agent/
    simulators/           hostlib/, wire/, drivers/         never a role
    traceedge/            everything above, never tests/    (the top floor)
    tests/, bench/        anything

``drivers/codecs/`` may import ``wire/`` although the issue asked codecs to import nothing
of ours: both are the bottom floor, the pure modules copied onto the devices, and a check
both need (the GS1 check digit of a trace code and of a barcode) must exist once.
``drivers/transports/`` imports nothing of ours but the codecs (DESIGN.md's layout gives
drivers the standard library, pyserial, pyscard and pymodbus), not even ``wire/``: the
stricter rule the code already keeps. Nothing but ``tests/`` and ``bench/`` imports
``traceedge/``; product code (the floors below ``traceedge/``) never imports
``simulators/`` or ``tests/``.

No import cycles among our modules: a graph of the imports that run when a module loads
(module level, not under a type-checking guard; imports inside functions run later and
are how a cycle is legitimately broken), its strongly connected components, and one
concrete cycle through each shown with file and line.

The firmware (``firmware/micropython/``) is checked on its own terms: it imports only its
own modules (``te``, ``tesim``, the apps, ``main``), the host modules its manifests copy
onto a board (``wire/``, ``drivers/codecs/``, the trace code), MicroPython's own modules
(``js`` only in the simulator, which runs on the WebAssembly port), and ``typing`` only
under its ``if _TYPING:`` guard. Then, board by board (the files ``traceedge device flash``
copies), every import that runs on the device must find its module on that board, unless it
sits in a ``try:`` that catches ``ImportError`` (``wire/mac.py`` falls back when ``hmac``
is missing).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Top-level folders that are never our code.
SKIP_DIRS = frozenset({".git", ".venv", "node_modules", "build", "__pycache__", "demo-out"})
FIRMWARE_DIR = "firmware/micropython"
# Folders of scripts run as ``python bench/x.py``: a sibling module imports as a top name.
SCRIPT_DIRS = ("bench",)

DRIVERS = frozenset({"drivers", "drivers.codecs", "drivers.transports"})
PRODUCT = frozenset({"wire", "hostlib", "edge_agent", "collector"} | DRIVERS)
EVERYTHING = PRODUCT | {"simulators", "traceedge", "tests", "bench"}


@dataclass(frozen=True)
class Floor:
    may_import: frozenset[str]
    rule: str


FLOORS: dict[str, Floor] = {
    "wire": Floor(frozenset({"wire"}), "wire/ imports nothing of ours"),
    "drivers": Floor(frozenset({"drivers"}), "drivers/__init__.py imports nothing of ours"),
    "drivers.codecs": Floor(
        frozenset({"drivers.codecs", "drivers", "wire"}), "drivers/codecs/ imports only wire/"
    ),
    "drivers.transports": Floor(
        frozenset({"drivers.transports", "drivers.codecs", "drivers"}),
        "drivers/transports/ imports only drivers/codecs/",
    ),
    "hostlib": Floor(frozenset({"hostlib", "wire"}), "hostlib/ imports only wire/"),
    "edge_agent": Floor(
        frozenset({"edge_agent", "hostlib", "wire"} | DRIVERS),
        "edge_agent/ imports only hostlib/, wire/ and drivers/",
    ),
    "collector": Floor(
        frozenset({"collector", "hostlib", "wire"} | DRIVERS),
        "collector/ imports only hostlib/, wire/ and drivers/",
    ),
    "simulators": Floor(
        frozenset({"simulators", "hostlib", "wire"} | DRIVERS),
        "simulators/ imports only hostlib/, wire/ and drivers/",
    ),
    "traceedge": Floor(EVERYTHING - {"tests", "bench"}, "traceedge/ never imports tests/"),
    "tests": Floor(EVERYTHING, ""),
    "bench": Floor(EVERYTHING, ""),
}

# Known breaks someone is mending on another branch: (file, imported module).
ALLOWED_BREAKS: frozenset[tuple[str, str]] = frozenset()

# MicroPython's own modules on the ESP32 port (the micropython-esp32-stubs 1.27 the firmware
# type-checks against, u-prefixed aliases left out).
MICROPYTHON = frozenset(
    {
        "_thread", "array", "asyncio", "binascii", "bluetooth", "btree", "builtins", "cmath",
        "collections", "cryptolib", "deflate", "errno", "esp", "esp32", "espnow", "framebuf",
        "gc", "hashlib", "heapq", "io", "json", "machine", "math", "micropython", "neopixel",
        "network", "ntptime", "onewire", "os", "platform", "random", "re", "select", "socket",
        "ssl", "struct", "sys", "time", "tls", "uctypes", "vfs",
    }
)  # fmt: skip
# The WebAssembly port's JavaScript bridge: the simulator's own, never on a board.
WEBASSEMBLY = frozenset({"js"})
TYPE_GUARDS = frozenset({"TYPE_CHECKING", "_TYPING"})


@dataclass(frozen=True)
class Import:
    """One imported module, as the importing file names it."""

    file: str  # path relative to the checked root, with /
    line: int
    importer: str  # the importing module's dotted name
    target: str  # the imported module's dotted name (resolved)
    at_load: bool  # runs when the importer loads: module level, not type-only
    type_only: bool
    optional: bool = False  # in a ``try:`` that catches ImportError


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


# -- reading imports ---------------------------------------------------------------------


_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _catches_import_error(node: ast.Try) -> bool:
    for h in node.handlers:
        kinds = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        for k in kinds:
            if k is None or (isinstance(k, ast.Name) and k.id in _IMPORT_ERRORS):
                return True
    return False


def _is_type_guard(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id in TYPE_GUARDS
    return isinstance(test, ast.Attribute) and test.attr in TYPE_GUARDS


class _Collector(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, bool, bool, bool]] = []
        self._depth = 0  # inside a function or lambda
        self._guards = 0  # inside ``if TYPE_CHECKING:``
        self._optional = 0  # inside ``try:`` … ``except ImportError:``

    def _found(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append((node, self._depth == 0, self._guards > 0, self._optional > 0))

    visit_Import = _found
    visit_ImportFrom = _found

    def visit_Try(self, node: ast.Try) -> None:
        optional = _catches_import_error(node)
        self._optional += optional
        for stmt in node.body:
            self.visit(stmt)
        self._optional -= optional
        for part in (node.handlers, node.orelse, node.finalbody):
            for n in part:
                self.visit(n)

    def _in_function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = _in_function
    visit_AsyncFunctionDef = _in_function
    visit_Lambda = _in_function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_guard(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self._guards += 1
        for stmt in node.body:
            self.visit(stmt)
        self._guards -= 1
        for stmt in node.orelse:
            self.visit(stmt)


def module_name(rel: PurePosixPath) -> str:
    """``collector/store.py`` → ``collector.store``; ``wire/__init__.py`` → ``wire``."""
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_imports(path: Path, rel: str, importer: str, known: Iterable[str]) -> list[Import]:
    """Every import in ``path`` (module ``importer``), resolved against the ``known`` modules.

    A relative import that climbs above the top package is resolved to ``"<outside>"``."""
    known_set = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"), rel)
    c = _Collector()
    c.visit(tree)
    is_pkg = rel.endswith("__init__.py")
    package = importer if is_pkg else importer.rpartition(".")[0]
    out: list[Import] = []
    for node, top, guarded, optional in c.found:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            if node.level:
                parts = package.split(".") if package else []
                up = node.level - 1
                if up >= len(parts):
                    base = "<outside>"
                else:
                    kept = parts[: len(parts) - up]
                    base = ".".join([*kept, node.module] if node.module else kept)
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                targets.append(sub if sub in known_set else base)
        for t in dict.fromkeys(targets):
            out.append(
                Import(rel, node.lineno, importer, t, top and not guarded, guarded, optional)
            )
    return out


def _py_files(root: Path, folder: str) -> Iterator[Path]:
    base = root / folder
    for p in sorted(base.rglob("*.py")):
        if not SKIP_DIRS.intersection(p.relative_to(root).parts):
            yield p


def host_modules(root: Path) -> dict[str, str]:
    """Module name → file (relative, with /) for every host package and script folder."""
    out: dict[str, str] = {}
    for top in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIP_DIRS):
        if not (top / "__init__.py").is_file() and top.name not in SCRIPT_DIRS:
            continue
        for p in _py_files(root, top.name):
            rel = PurePosixPath(p.relative_to(root).as_posix())
            out[module_name(rel)] = str(rel)
    return out


def host_imports(root: Path) -> list[Import]:
    """Every import in every host module under ``root``."""
    mods = host_modules(root)
    out: list[Import] = []
    for name, rel in mods.items():
        imps = read_imports(root / rel, rel, name, mods)
        top = name.split(".")[0]
        if top in SCRIPT_DIRS:  # ``import benchlib`` beside bench/drain.py
            imps = [
                Import(
                    i.file,
                    i.line,
                    i.importer,
                    f"{top}.{i.target}",
                    i.at_load,
                    i.type_only,
                    i.optional,
                )
                if f"{top}.{i.target.split('.')[0]}" in mods
                else i
                for i in imps
            ]
        out += imps
    return out


# -- the floors --------------------------------------------------------------------------


def floor_of(module: str) -> str | None:
    """The floor a module of ours stands on; None for anything not ours."""
    parts = module.split(".")
    if parts[0] == "drivers" and len(parts) > 1 and f"drivers.{parts[1]}" in FLOORS:
        return f"drivers.{parts[1]}"
    return parts[0] if parts[0] in FLOORS else None


def _rule_broken(src: str, dst: str) -> str | None:
    if dst in FLOORS[src].may_import:
        return None
    if dst == "traceedge":
        return "nothing but tests/ and bench/ imports traceedge/ (the top floor)"
    if dst in ("tests", "bench"):
        return f"nothing but tests/ and bench/ imports {dst}/"
    if dst == "simulators" and src in PRODUCT:
        return "product code never imports simulators/"
    if {src, dst} == {"edge_agent", "collector"}:
        return "edge_agent/ and collector/ never import each other"
    return FLOORS[src].rule


def check_floors(
    imports: Iterable[Import], allowed: frozenset[tuple[str, str]] = frozenset()
) -> tuple[list[Violation], set[tuple[str, str]]]:
    """Imports that break a floor, and the ``allowed`` breaks that were actually met."""
    bad: list[Violation] = []
    met: set[tuple[str, str]] = set()
    for i in imports:
        src = floor_of(i.importer)
        if i.target == "<outside>":
            bad.append(Violation(i.file, i.line, "relative import climbs above the top package"))
            continue
        dst = floor_of(i.target)
        if src is None or dst is None:
            continue
        rule = _rule_broken(src, dst)
        if rule is None:
            continue
        if (i.file, i.target) in allowed:
            met.add((i.file, i.target))
            continue
        guard = " (under a type-checking guard)" if i.type_only else ""
        bad.append(Violation(i.file, i.line, f"{i.importer} imports {i.target}{guard}: {rule}"))
    return bad, met


def unknown_packages(root: Path) -> list[str]:
    """Top-level packages with no floor rule: a new package must say where it stands."""
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and p.name not in SKIP_DIRS
        and (p / "__init__.py").is_file()
        and p.name not in FLOORS
    )


# -- cycles ------------------------------------------------------------------------------


def _strong_components(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph may be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp: list[str] = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    out.append(sorted(comp))
    return out


def _a_cycle(start: str, members: set[str], edges: Mapping[str, Mapping[str, Import]]) -> list[str]:
    """A shortest path from ``start`` back to itself inside one component (BFS)."""
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for child in sorted(edges.get(node, {})):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in prev:
                    prev[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{start} is in a component without a cycle through it")


def find_cycles(imports: Iterable[Import], modules: Iterable[str]) -> list[Violation]:
    """One violation per import cycle among ``modules``, the cycle spelled out with lines."""
    mods = set(modules)
    edges: dict[str, dict[str, Import]] = {m: {} for m in mods}
    for i in imports:
        if i.at_load and i.target in mods and i.target != i.importer:
            edges[i.importer].setdefault(i.target, i)
    out: list[Violation] = []
    for comp in _strong_components(edges):
        if len(comp) < 2:
            continue
        cycle = _a_cycle(comp[0], set(comp), edges)
        hops = [edges[a][b] for a, b in itertools.pairwise(cycle)]
        steps = " → ".join(f"{h.importer} ({h.file}:{h.line})" for h in hops)
        first = hops[0]
        more = f"; the whole knot: {', '.join(comp)}" if len(comp) > len(hops) else ""
        out.append(
            Violation(
                first.file,
                first.line,
                f"import cycle: {steps} → {cycle[-1]}{more}; move the shared part down a "
                "floor or import it where it is used",
            )
        )
    return out


# -- the firmware ------------------------------------------------------------------------


def firmware_modules(fw: Path, root: Path) -> dict[str, str]:
    """Module name → file for the firmware, named as on the device's ``sys.path``:
    ``lib/`` and ``sim/`` (simulator) hold packages, ``apps/<app>/`` one module per app,
    ``main.py`` at the top."""
    out: dict[str, str] = {}
    for p in sorted(fw.rglob("*.py")):
        rel = p.relative_to(fw)
        if p.name == "manifest.py" or SKIP_DIRS.intersection(rel.parts):
            continue
        parts = rel.parts
        if parts[0] in ("lib", "sim"):
            name = module_name(PurePosixPath(*parts[1:]))
        elif parts[0] == "apps" and len(parts) == 3:
            name = PurePosixPath(parts[2]).stem
        elif len(parts) == 1:
            name = rel.stem
        else:
            raise AssertionError(f"{p}: not where firmware modules live (lib/, sim/, apps/<app>/)")
        out[name] = p.relative_to(root).as_posix()
    return out


def board_module(dest: str) -> str:
    """A board path to the module name it imports as: ``lib/wire/mac.py`` → ``wire.mac``."""
    p = PurePosixPath(dest)
    return module_name(PurePosixPath(*p.parts[1:]) if p.parts[0] == "lib" else p)


def check_firmware(
    root: Path, boards: Mapping[str, Mapping[str, Path]], fw_dir: str = FIRMWARE_DIR
) -> list[Violation]:
    """The firmware's imports; ``boards`` maps an app to its board (board path → source)."""
    fw = root / fw_dir
    own = firmware_modules(fw, root)
    copied = {
        board_module(dest)
        for files in boards.values()
        for dest, src in files.items()
        if dest.endswith(".py") and not src.resolve().is_relative_to(fw.resolve())
    }
    bad: list[Violation] = []
    for name, rel in own.items():
        in_sim = rel.startswith(f"{fw_dir}/sim/")
        builtins = MICROPYTHON | WEBASSEMBLY if in_sim else MICROPYTHON
        for i in read_imports(root / rel, rel, name, set(own) | copied):
            top = i.target.split(".")[0]
            if i.target in own or i.target in copied or top in builtins:
                continue
            if top == "typing" and i.type_only:
                continue
            where = "the simulator" if in_sim else "the firmware"
            extra = ", js" if in_sim else ""
            why = (
                "typing exists only for the type checker: import it under `if _TYPING:`"
                if top == "typing"
                else f"{where} imports only its own modules, the host modules a manifest "
                f"copies onto the board, and MicroPython's modules{extra}"
            )
            bad.append(Violation(i.file, i.line, f"{name} imports {i.target}: {why}"))
    for app, files in sorted(boards.items()):
        on_board = {board_module(d): src for d, src in files.items() if d.endswith(".py")}
        for mod, src in sorted(on_board.items()):
            shown = _shown(src, root)
            for i in read_imports(src, shown, mod, set(on_board) | set(own) | copied):
                if i.type_only or i.optional or i.target in on_board:
                    continue
                if i.target.split(".")[0] in MICROPYTHON:
                    continue
                bad.append(
                    Violation(
                        i.file,
                        i.line,
                        f"on the {app} board {mod} imports {i.target}, which is neither copied "
                        f"there ({fw_dir}/apps/{app}/manifest.py) nor a MicroPython module",
                    )
                )
    return bad


def _shown(src: Path, root: Path) -> str:
    try:
        return src.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(src)
