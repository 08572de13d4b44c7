"""``traceedge device flash``: copy a terminal app and its config onto a board (mpremote).

What goes on the board comes from the app's MicroPython manifest
(``firmware/micropython/apps/<app>/manifest.py``, the same file a firmware build freezes
with ``FROZEN_MANIFEST``), plus ``main.py``, the device's provisioned ``config.json`` and
its ``app.json``::

    /main.py  /config.json  /app.json
    /lib/te/...  /lib/wire/...  /lib/drivers/codecs/...  /lib/<app>.py

The copy is one ``mpremote`` invocation (one serial connection), commands chained with
``+``: an ``exec`` that creates the folders (existing ones are fine), one ``fs cp`` per
file, then ``reset``. ``--dry-run`` prints the file list and that command without a board.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import click

from hostlib.errors import ConfigError, TraceedgeError
from traceedge.cli.common import friendly_errors

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware" / "micropython"
APP_TYPES = {
    "cylinder": "cylinder-reader",
    "elevator": "elevator-box",
    "settlement": "market-scale",
    "warehouse": "warehouse-terminal",
}
MPREMOTE_HINT = "install it with `pip install mpremote` (MicroPython's own board tool)"


@dataclass(frozen=True)
class BoardFile:
    """One file to copy: ``src`` on this machine, ``dest`` on the board (no leading /)."""

    src: Path
    dest: str


class ManifestError(TraceedgeError):
    """A manifest names a file that does not exist or uses an unsupported directive."""


def _read_manifest(path: Path, out: dict[str, Path], seen: set[Path]) -> None:
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    here = path.parent

    def add(src: Path, dest: str) -> None:
        if not src.is_file():
            raise ManifestError(f"{path}: {src} does not exist")
        if dest in out and out[dest] != src.resolve():
            raise ManifestError(f"{path}: {dest} comes from both {out[dest]} and {src}")
        out[dest] = src.resolve()

    def include(manifest: str) -> None:
        p = here / manifest
        _read_manifest(p / "manifest.py" if p.is_dir() else p, out, seen)

    def module(module_path: str, base_path: str = ".", opt: int | None = None) -> None:
        add(here / base_path / module_path, "lib/" + PurePosixPath(module_path).name)

    def package(
        package_path: str,
        files: list[str] | None = None,
        base_path: str = ".",
        opt: int | None = None,
    ) -> None:
        root = here / base_path / package_path
        names = (
            files
            if files is not None
            else sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))
        )
        for name in names:
            add(root / name, f"lib/{package_path}/{name}")

    def unsupported(*args: object, **kw: object) -> None:
        raise ManifestError(f"{path}: only include, module and package are supported")

    def metadata(*args: object, **kw: object) -> None:
        return None

    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    exec(
        code,
        {
            "include": include,
            "module": module,
            "package": package,
            "metadata": metadata,
            "require": unsupported,
            "freeze": unsupported,
        },
    )


def manifest_files(app: str, firmware: Path = FIRMWARE) -> list[BoardFile]:
    """The files the app's manifest puts in ``/lib``, sorted by board path."""
    if app not in APP_TYPES:
        raise ConfigError("--app", app, f"unknown app; one of {', '.join(APP_TYPES)}")
    path = firmware / "apps" / app / "manifest.py"
    if not path.is_file():
        raise ConfigError(str(path), "", "manifest not found (is --firmware right?)")
    out: dict[str, Path] = {}
    _read_manifest(path, out, set())
    return [BoardFile(src, dest) for dest, src in sorted(out.items())]


def board_files(app: str, firmware: Path = FIRMWARE) -> list[BoardFile]:
    """``main.py`` and the manifest's files (the configs are added by the caller)."""
    return [BoardFile((firmware / "main.py").resolve(), "main.py"), *manifest_files(app, firmware)]


def check_configs(app: str, config: Path, app_config: Path) -> None:
    """Refuse to flash configs the firmware would reject at boot."""
    try:
        ident = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(str(config), "", f"not a device config: {exc}") from exc
    for key in ("dev", "key", "type", "site", "link"):
        if key not in ident:
            raise ConfigError(str(config), key, "missing (write it with `device provision`)")
    if ident["type"] != APP_TYPES[app]:
        raise ConfigError(
            str(config), "type", f"{ident['type']!r} is not a {APP_TYPES[app]} (app {app})"
        )
    try:
        acfg = json.loads(app_config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(str(app_config), "", f"not an app config: {exc}") from exc
    if acfg.get("app") != app:
        raise ConfigError(str(app_config), "app", f"must be {app!r}")
    if not isinstance(acfg.get("hw"), dict):
        raise ConfigError(str(app_config), "hw", "the board's peripherals are missing")


def mpremote_command(files: list[BoardFile], port: str, mpremote: str = "mpremote") -> list[str]:
    """One mpremote invocation: make the folders, copy every file, reset the board."""
    dirs: set[str] = set()
    for f in files:
        parts = PurePosixPath(f.dest).parts[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    mk = (
        "import os\nfor d in "
        + repr(tuple(sorted(dirs)))
        + ":\n    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n"
    )
    cmd = [mpremote, "connect", port, "exec", mk]
    for f in files:
        cmd += ["+", "fs", "cp", str(f.src), ":" + f.dest]
    return [*cmd, "+", "reset"]


def register(device_group: click.Group) -> None:
    """Add ``flash`` to the ``traceedge device`` group."""

    @device_group.command("flash")
    @click.option(
        "--app", type=click.Choice(sorted(APP_TYPES)), required=True, help="Terminal app."
    )
    @click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        required=True,
        help="The device's config file from `device provision` (becomes /config.json).",
    )
    @click.option(
        "--app-config",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        required=True,
        help="The app's settings and pins (becomes /app.json); see apps/<app>/app.example.json.",
    )
    @click.option(
        "--port",
        default="auto",
        show_default=True,
        help="Board serial port for mpremote (e.g. /dev/ttyUSB0); auto picks the first.",
    )
    @click.option("--dry-run", is_flag=True, help="Print the files and the command; touch nothing.")
    @click.option(
        "--mpremote", default="mpremote", show_default=True, help="The mpremote executable."
    )
    @click.option(
        "--firmware",
        type=click.Path(path_type=Path, file_okay=False),
        default=str(FIRMWARE),
        show_default=True,
        help="The firmware/micropython folder.",
    )
    def flash_cmd(
        app: str,
        config: Path,
        app_config: Path,
        port: str,
        dry_run: bool,
        mpremote: str,
        firmware: Path,
    ) -> None:
        """Copy a terminal app, its libraries and its config onto a MicroPython board.

        \b
        Example:
          traceedge device flash --app cylinder --config devices/CYL-S1-3F9A2C.json \\
              --app-config site/cylinder-line1.json --port /dev/ttyUSB0
          traceedge device flash --app elevator --config devices/ELV-B7-01.json \\
              --app-config site/elevator.json --dry-run
        """
        with friendly_errors():
            check_configs(app, config, app_config)
            files = [
                *board_files(app, firmware),
                BoardFile(config.resolve(), "config.json"),
                BoardFile(app_config.resolve(), "app.json"),
            ]
            cmd = mpremote_command(files, port, mpremote)
            if dry_run:
                for f in files:
                    click.echo(f"{f.dest}\t{f.src}")
                click.echo("# command:")
                click.echo(shlex.join(cmd))
                return
            exe = shutil.which(mpremote)
            if exe is None:
                raise ConfigError("--mpremote", mpremote, f"not found: {MPREMOTE_HINT}")
            res = subprocess.run([exe, *cmd[1:]], check=False)
            if res.returncode != 0:
                raise TraceedgeError(
                    f"mpremote failed (exit {res.returncode}); check the port and that the "
                    "board runs MicroPython; re-running is safe"
                )
        click.echo(f"flashed {len(files)} files ({app}) to {port}", err=True)
