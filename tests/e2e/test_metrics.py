"""Metrics of the real chain: terminals → agent → Mosquitto → collector → platform, each
role scraped over HTTP as Prometheus would. Both scrapes pass promtool, say what went
through, and carry every metric name the alert rules (config/alerts.yml) use."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.apiauth import bearer, make_token
from tests.conftest import SITE, Chain, wait_until
from tests.promtool import alert_metric_names, check_metrics, value
from traceedge.brokers import free_port

C = "traceedge_collector_"
A = "traceedge_agent_"


def names(text: str) -> set[str]:
    """The metric names a scrape declares (``# TYPE``), also those with no series yet (no
    record quarantined here): a counter family ``x`` is written ``x_total``."""
    out = set()
    for fam in text_string_to_metric_families(text):
        out.add(fam.name + "_total" if fam.type == "counter" else fam.name)
        out.update(s.name for s in fam.samples)
    return out


def test_both_roles_export_what_went_through_and_what_the_alerts_use(
    chain_factory: Callable[..., Chain],
) -> None:
    api, agent_port = free_port(), free_port()
    ch = chain_factory(api_port=api, agent_overrides={"metrics_port": agent_port})
    out = ch.fleet().run(600, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(600)
    collector_url = f"http://127.0.0.1:{api}/metrics"
    auth = bearer(make_token(ch.store, "monitor"))  # Prometheus's credentials_file holds it

    def site_reported() -> bool:
        text = httpx.get(collector_url, headers=auth, timeout=5).text
        return f'{C}site_last_status_age_seconds{{site="{SITE}"}}' in text

    wait_until(site_reported, 20, "the agent's status report at the collector")
    c = httpx.get(collector_url, headers=auth, timeout=5)
    a = httpx.get(f"http://127.0.0.1:{agent_port}/metrics", timeout=5)
    for reply in (c, a):
        assert reply.status_code == 200
        check_metrics(reply.content)

    assert value(c.text, C + "stored_records_total") == 600
    assert value(c.text, C + "site_stored_records_total", site=SITE) == 600
    assert value(c.text, C + "site_missing_records", site=SITE) == 0
    assert value(c.text, C + "site_last_seen_age_seconds", site=SITE) < 30
    assert value(c.text, C + "forward_backlog_records") == 0
    assert value(c.text, C + "dead_workers") == 0
    assert value(c.text, C + "process_batches_total") >= 1  # the service's live counters
    assert value(c.text, C + "process_broker_connected") == 1
    assert value(c.text, C + "store_up") == 1

    assert value(a.text, A + "stored_records_total", site=SITE) == 600
    assert value(a.text, A + "acked_records_total", site=SITE) == 600
    assert value(a.text, A + "outbox_records", site=SITE) == 0
    assert value(a.text, A + "uplink_connected", site=SITE) == 1

    exported = names(c.text) | names(a.text)
    missing = alert_metric_names() - exported
    assert not missing, f"config/alerts.yml uses metrics no role exports: {sorted(missing)}"
