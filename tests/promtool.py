"""promtool (Debian's ``prometheus`` package) for the tests: lint a scrape, check and
unit-test the alert rules. A test that cannot find it fails saying what to install."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

RULES = Path(__file__).resolve().parent.parent / "config" / "alerts.yml"
PROMTOOL_HINT = "promtool not found: apt-get install prometheus (Debian's package ships promtool)"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(PROMTOOL_HINT, pytrace=False)
    return path


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def alert_metric_names() -> set[str]:
    """Every metric name the expressions of config/alerts.yml use."""
    exprs = re.findall(r"^\s*expr: (.+)$", RULES.read_text(), re.M)
    return {m for e in exprs for m in re.findall(r"\btraceedge_[a-z0-9_]+", e)}


def check_metrics(text: bytes) -> None:
    """``promtool check metrics``: the scrape parses and passes its lint (HELP on every
    metric, counters named ``_total``, units in base units), with nothing to say."""
    res = run("check", "metrics", stdin=text)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


def samples(text: bytes | str) -> dict[str, list[Sample]]:
    """A scrape parsed by prometheus_client: family name → its samples."""
    body = text.decode() if isinstance(text, bytes) else text
    return {f.name: f.samples for f in text_string_to_metric_families(body)}


def value(text: bytes | str, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` in a scrape (AssertionError if none)."""
    body = text.decode() if isinstance(text, bytes) else text
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels} in the scrape")
