"""The agent's ``/metrics``: :meth:`edge_agent.agent.Agent.numbers` in the Prometheus text
format, every series labelled with the agent's ``site``.

Each number is described once in :data:`SPECS` (``counter`` or ``gauge``, HELP); the
per-decision and per-reason numbers become one labelled counter each. A number
``numbers()`` gains without a line here is not exported (a test checks none is missing).
docs/metrics.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hostlib.metrics import Spec, exposition, families

PREFIX = "traceedge_agent"

SPECS = (
    # outbox counters (kept in the outbox: they survive restarts)
    Spec("received", "received_messages", "counter", "Messages taken from terminals, good or bad"),
    Spec("stored", "stored_records", "counter", "Records committed to the outbox"),
    Spec("duplicates", "duplicate_records", "counter", "Records received again and dropped"),
    Spec("quarantined", "quarantined_messages", "counter", "Messages quarantined at intake"),
    Spec("evicted", "evicted_records", "counter", "Status samples evicted from a full outbox"),
    Spec(
        "refused",
        "refused_records",
        "counter",
        "Records refused: the outbox was full of protected records",
    ),
    Spec("uplinked", "uplinked_records", "counter", "Records sent to the collector (resends too)"),
    Spec("acked_records", "acked_records", "counter", "Records the collector acknowledged"),
    Spec("acked_batches", "acked_batches", "counter", "Batches the collector acknowledged"),
    Spec(
        "quarantine_evicted",
        "quarantine_evicted",
        "counter",
        "Quarantine rows evicted past the quarantine's byte bound",
    ),
    # uplink and commands (since the process started)
    Spec("resends", "batch_resends", "counter", "Batches sent again (no ack in time, reconnect)"),
    Spec(
        "collector_resends",
        "collector_resends",
        "counter",
        "Batches sent again at once because a collector announced itself",
    ),
    Spec("bad_acks", "bad_acks", "counter", "Unreadable messages on the ack topic"),
    Spec("unknown_acks", "unknown_acks", "counter", "Genuine acks for a batch not in flight"),
    Spec("forged_acks", "forged_acks", "counter", "Acks that do not verify: nothing deleted"),
    Spec("commands_applied", "commands_applied", "counter", "Centre commands applied"),
    # gauges
    Spec("depth", "outbox_records", "gauge", "Records waiting in the outbox"),
    Spec("bytes", "outbox_bytes", "gauge", "Bytes the outbox holds (records and row overhead)"),
    Spec("max_bytes", "outbox_max_bytes", "gauge", "The outbox's bound in bytes"),
    Spec(
        "oldest_age_s",
        "oldest_record_age_seconds",
        "gauge",
        "Age of the oldest record waiting in the outbox (0 when empty)",
    ),
    Spec("in_flight_batches", "in_flight_batches", "gauge", "Batches sent and not acked yet"),
    Spec("local_connected", "local_connected", "gauge", "1 while on the terminals' broker"),
    Spec("uplink_connected", "uplink_connected", "gauge", "1 while on the central broker"),
    Spec(
        "alarm_outbox_full",
        "alarm_outbox_full",
        "gauge",
        "1 while intake is refused: only protected records remain in a full outbox",
    ),
    Spec("intake_queue", "intake_queue_messages", "gauge", "Messages waiting to be stored"),
    Spec("intake_queue_bytes", "intake_queue_bytes", "gauge", "Bytes waiting to be stored"),
    Spec(
        "cylinder_registry_version",
        "cylinder_registry_version",
        "gauge",
        "Version of the cylinder registry the fill gate answers from",
    ),
    Spec("cylinders_known", "cylinders_known", "gauge", "Cylinders in the fill gate's registry"),
    Spec(
        "licence_registry_version",
        "licence_registry_version",
        "gauge",
        "Version of the licence registry the dispatch gate answers from",
    ),
    Spec("licences_known", "licences_known", "gauge", "Licences held for the dispatch gate"),
    Spec(
        "licence_use_version",
        "licence_use_version",
        "gauge",
        "Version of the centre's push of what each licence let leave at its other sites",
    ),
    Spec(
        "recall_list_version",
        "recall_list_version",
        "gauge",
        "Version of the recalled-lot list the dispatch gate answers from",
    ),
    Spec(
        "registry_problem",
        "registry_problem",
        "gauge",
        "1 while the device registry file is broken or gone (the last good one is in force)",
    ),
)

GATE = {
    "gate_allow": "allow",
    "gate_deny": "deny",
    "gate_errors": "error",
    "gate_refused": "refused",
}
"""``numbers()`` key → ``decision`` label of ``traceedge_agent_gate_decisions_total``."""
DISPATCH = {
    "dispatch_allow": "allow",
    "dispatch_deny": "deny",
    "dispatch_errors": "error",
    "dispatch_refused": "refused",
}
"""``numbers()`` key → ``decision`` label of ``traceedge_agent_dispatch_decisions_total``."""
REJECTED = "commands_rejected_"
"""``numbers()`` keys ``commands_rejected_<reason>`` → ``commands_rejected_total{reason}``."""
NOT_EXPORTED = frozenset({"commands_rejected"})
"""The sum of the per-reason counts: Prometheus sums them itself."""
SOURCES = "sources"
"""``numbers()`` key: the sources' states (:meth:`edge_agent.sources.base.SourceSet.states`)."""


def metric_families(site: str, numbers: Mapping[str, Any]) -> Iterator[Metric]:
    """The agent's metric families from one ``numbers()`` snapshot."""
    labels = {"site": site}
    yield from families(PREFIX, SPECS, numbers, labels)
    gate = CounterMetricFamily(
        f"{PREFIX}_gate_decisions",
        "Fill gate answers, by decision (allow, deny, error, refused)",
        labels=["site", "decision"],
    )
    for key, decision in GATE.items():
        if key in numbers:
            gate.add_metric([site, decision], float(numbers[key]))
    yield gate
    dispatch = CounterMetricFamily(
        f"{PREFIX}_dispatch_decisions",
        "Warehouse dispatch gate answers, by decision (allow, deny, error, refused)",
        labels=["site", "decision"],
    )
    for key, decision in DISPATCH.items():
        if key in numbers:
            dispatch.add_metric([site, decision], float(numbers[key]))
    yield dispatch
    rejected = CounterMetricFamily(
        f"{PREFIX}_commands_rejected",
        "Centre commands refused, by reason (signature, version, expiry, ...)",
        labels=["site", "reason"],
    )
    for key in sorted(numbers):
        if key.startswith(REJECTED):
            rejected.add_metric([site, key[len(REJECTED) :]], float(numbers[key]))
    yield rejected
    yield from source_families(site, numbers.get(SOURCES, []))


def source_families(site: str, states: list[dict[str, Any]]) -> Iterator[Metric]:
    """Per source: whether it is up, and its counters (names per kind). None without
    sources (a family without samples is not exported)."""
    if not states:
        return
    labels = ["site", "source", "kind"]
    up = GaugeMetricFamily(
        f"{PREFIX}_source_up",
        "1 while the source's device answers (serial link, Modbus controller), else 0",
        labels=labels,
    )
    events = CounterMetricFamily(
        f"{PREFIX}_source_events",
        "A source's counters, by name (records, frames, bad frames, polls, errors, ...)",
        labels=[*labels, "counter"],
    )
    for st in states:
        ids = [site, str(st["name"]), str(st["kind"])]
        up.add_metric(ids, 1.0 if st["state"] == "up" else 0.0)
        for name, value in sorted(st["counters"].items()):
            events.add_metric([*ids, name], float(value))
    yield up
    if events.samples:
        yield events


def unexported(numbers: Mapping[str, Any]) -> set[str]:
    """Keys of a ``numbers()`` snapshot that no metric carries."""
    known = {s.key for s in SPECS} | set(GATE) | set(DISPATCH) | NOT_EXPORTED | {SOURCES}
    return {k for k in numbers if k not in known and not k.startswith(REJECTED)}


def render(site: str, numbers: Callable[[], Mapping[str, Any]]) -> bytes:
    """A scrape: ``numbers()`` now, in the Prometheus text format."""
    return exposition(metric_families(site, numbers()))
