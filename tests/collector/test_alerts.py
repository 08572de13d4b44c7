"""config/alerts.yml: promtool accepts the rules, and its unit tests
(tests/collector/alerts_test.yml) fire every alert from synthetic series and show it quiet
for healthy ones. That the metric names in the rules are the ones really exported is
checked against a real collector's and agent's scrape in tests/e2e/test_metrics.py."""

from __future__ import annotations

import re
from pathlib import Path

from tests.promtool import RULES, alert_metric_names, run

UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")


def alert_names(text: str) -> list[str]:
    return re.findall(r"^\s*- alert: (\w+)", text, re.M)


def test_promtool_accepts_the_rules() -> None:
    res = run("check", "rules", RULES)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(alert_names(RULES.read_text()))} rules found" in res.stdout


def test_each_alert_fires_when_it_should_and_only_then() -> None:
    res = run("test", "rules", UNIT_TESTS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    tests = UNIT_TESTS.read_text()
    alerts = alert_names(RULES.read_text())
    assert len(alerts) >= 8
    for name in alerts:
        cases = re.findall(rf"alertname: {name}\n\s+exp_alerts:( \[\])?", tests)
        assert " []" in cases, f"{name}: no case where it stays quiet"
        assert "" in cases, f"{name}: no case where it fires"


def test_the_rules_use_metrics_of_both_roles() -> None:
    names = alert_metric_names()
    assert any(n.startswith("traceedge_collector_") for n in names)
    assert any(n.startswith("traceedge_agent_") for n in names)
