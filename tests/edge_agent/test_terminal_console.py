"""The stall terminal's operator commands: the parser is total, and what it prints parses
back to the same command."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.terminal.console import HELP, Command, parse
from tests.edge_agent.consoles import check_refused, check_total
from wire.settlement import PAY


@given(st.text(max_size=300))
def test_any_text_is_a_command_blank_or_a_clear_error(line: str) -> None:
    check_total(parse, line)


commands = st.one_of(
    st.builds(Command, st.just("goods"), st.integers(1, 99999)),
    st.builds(Command, st.just("pieces"), st.integers(1, 100000)),
    st.builds(lambda p: Command("pay", text=p), st.sampled_from(PAY)),
    st.builds(lambda t: Command("reprint", text=t),
              st.from_regex(r"[0-9A-Za-z]{0,20}", fullmatch=True)),
    st.builds(Command, st.sampled_from(["drop", "settle", "cancel", "status", "help", "quit"])),
)  # fmt: skip


@given(commands, st.sampled_from(["", " ", "\t"]), st.booleans())
def test_a_command_printed_parses_back(cmd: Command, pad: str, upper: bool) -> None:
    text = pad + str(cmd) + pad
    assert parse(text.upper() if upper and cmd.name != "reprint" else text) == cmd


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("goods", "needs one number"),
        ("goods 0", "1..99999"),
        ("goods x", "needs one number"),
        ("goods ٣", "needs one number"),  # a digit, but not an ASCII one
        ("pieces 100001", "1..100000"),
        ("pay bitcoin", "one of cash"),
        ("pay 8", "one of cash"),
        ("settle now", "takes nothing"),
        ("sell", "unknown command"),
        ("x" * 201, "longer than"),
    ],
)
def test_bad_lines_say_what_is_expected(line: str, message: str) -> None:
    check_refused(parse, line, message)


def test_payment_by_number_and_blank_lines() -> None:
    assert parse("pay 3") == Command("pay", text="wechat")
    assert parse("   ") is None
    assert "settle" in HELP and "reprint" in HELP
