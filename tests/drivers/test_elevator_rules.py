"""The elevator rule set shared by the sensor box firmware and the gateway's Modbus
source: properties under CPython (hypothesis), and the same traces under MicroPython."""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from drivers.codecs.elevator_rules import (
    CLEARED,
    FAULTS,
    LABELS,
    NAMES,
    RAISED,
    Condition,
    Limits,
    Rules,
    StatusTimer,
    checks,
)
from tests.mpy import repo_files, run_micropython
from wire.schemas import default_validator

from . import rules_trace
from .props import SETTINGS


class Clock:
    @staticmethod
    def diff(a: int, b: int) -> int:
        return a - b


def reference(samples: list[tuple[int, bool, bool]], raise_ms: int, clear_ms: int) -> list:
    """Debounce by definition, over the whole series: a state flips at the first sample at
    which the condition for flipping has held, sample after sample, for its delay."""
    events = []
    active = False
    start = None
    for t, bad, good in samples:
        want = good if active else bad
        if not want:
            start = None
            continue
        start = t if start is None else start
        if t - start >= (clear_ms if active else raise_ms):
            active = not active
            events.append((t, RAISED if active else CLEARED))
            start = None
    return events


series = st.lists(
    st.tuples(st.integers(0, 400), st.booleans(), st.booleans()), min_size=1, max_size=80
)


@SETTINGS
@given(series, st.integers(0, 1000), st.integers(0, 1000))
def test_condition_is_the_debounce_by_definition(
    steps: list[tuple[int, bool, bool]], raise_ms: int, clear_ms: int
) -> None:
    c = Condition("x", Clock(), raise_ms, clear_ms)
    t = 0
    samples = []
    got = []
    for dt, bad, good in steps:
        t += dt
        samples.append((t, bad, good))
        ev = c.update(t, bad, good)
        if ev:
            got.append((t, ev))
    assert got == reference(samples, raise_ms, clear_ms)
    assert [e for _, e in got] == [RAISED, CLEARED] * (len(got) // 2) + [RAISED] * (len(got) % 2)


def _sample(draw: st.DrawFn) -> list:
    maybe = st.one_of(st.none(), st.booleans())
    return [
        draw(st.integers(0, 700)),
        draw(st.booleans()),
        draw(st.booleans()),
        draw(st.booleans()),
        draw(maybe),
        draw(st.booleans()),
        draw(st.integers(-1500, 1500)),
        draw(st.one_of(st.none(), st.integers(-500, 20500))),
        draw(maybe),
        draw(maybe),
        draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True)),
    ]


samples = st.lists(st.composite(lambda draw: _sample(draw))(), min_size=1, max_size=60)


@SETTINGS
@given(samples)
def test_an_absent_input_never_raises_its_faults(seq: list) -> None:
    for s in seq:
        s[4] = s[9] = None  # no people sensor, no alarm button (a controller over Modbus)
        s[10] = [n for n in s[10] if n not in ("trapped_in_zone", "trapped_out_of_zone")]
        s[10] = [n for n in s[10] if n != "alarm_button"]
    raised = {e[0] for events in rules_trace.trace(seq) for e in events if e[1] == "raised"}
    assert not raised & {"trapped_in_zone", "trapped_out_of_zone", "alarm_button"}


@SETTINGS
@given(samples)
def test_a_reported_fault_is_raised_after_its_delay_whatever_the_inputs(seq: list) -> None:
    name = "safety_circuit_open"  # reported only: no input of either side gives it
    for s in seq:
        s[10] = [name]
    seq[0][0] = 0
    total = sum(s[0] for s in seq)
    raised = [e for events in rules_trace.trace(seq) for e in events if e[0] == name]
    delay = rules_trace.DELAYS["safety_ms"]
    assert raised == ([[name, "raised", -1]] if total >= delay else [])


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 3)), min_size=1, max_size=60))
def test_status_goes_out_on_change_rate_limited_and_periodically(
    steps: list[tuple[int, int]],
) -> None:
    timer = StatusTimer(Clock(), 5000, 700, 0)
    t = 0
    sent = [0] if timer.due(0, 0) else []
    assert sent == [0]  # the first one at once
    last_key = 0
    for dt, key in steps:
        t += dt
        if timer.due(t, key):
            assert t - sent[-1] >= 5000 or (key != last_key and t - sent[-1] >= 700)
            sent.append(t)
            last_key = key
        else:
            assert t - sent[-1] < 5000
            assert key == last_key or t - sent[-1] < 700


def test_the_table_matches_the_record_schema() -> None:
    schema_faults = default_validator().schemas["elevator.fault"]["properties"]["fault"]["enum"]
    assert sorted(NAMES) == sorted(schema_faults)
    assert set(LABELS) == set(NAMES)
    lim = Limits(1000, 115, None, None, 150)
    assert len(checks(lim, False, True, True, None, False, 0, None, None, None)) == len(FAULTS)
    rules = Rules(Clock(), lambda k, d: d, 2000)
    assert [f.name for f in rules.faults] == list(NAMES)


def _random_sequences(n: int, length: int, seed: int) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        seq = []
        for _ in range(length):
            seq.append(
                [
                    rng.choice((0, 50, 100, 250, 500, 900)),
                    rng.random() < 0.5,
                    rng.random() < 0.6,
                    rng.random() < 0.6,
                    rng.choice((None, True, False)),
                    rng.random() < 0.1,
                    rng.randint(-1400, 1400),
                    rng.choice((None, 0, 100, 5000, 20100, 20300, -200)),
                    rng.choice((None, True, True, False)),
                    rng.choice((None, False, False, True)),
                    rng.sample(list(NAMES), rng.choice((0, 0, 0, 1))),
                ]
            )
        out.append(seq)
    return out


def test_the_rules_give_the_same_trace_under_micropython() -> None:
    """The firmware and the gateway run the same module: under the board's interpreter it
    decides exactly what it decides on the host, for the same inputs."""
    seqs = _random_sequences(12, 60, 20261126)
    want = [rules_trace.trace(s) for s in seqs]
    assert sum(len(e) for t in want for e in t) > 100  # the sequences do raise and clear
    code = (
        "import json\nfrom tests.drivers import rules_trace\n"
        f"seqs = json.loads({json.dumps(json.dumps(seqs))})\n"
        "print('TRACE ' + json.dumps([rules_trace.trace(s) for s in seqs]))\n"
    )
    out = run_micropython(code, repo_files("drivers/codecs", "tests/drivers/rules_trace.py"))
    line = next(x for x in out.splitlines() if x.startswith("TRACE "))
    assert json.loads(line[6:]) == json.loads(json.dumps(want))
