"""The warehouse terminal's operator commands: the parser is total, and what it prints
parses back to the same command."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.terminal.whconsole import BARE, HELP, MODE_WORDS, Command, parse
from tests.edge_agent.consoles import check_refused, check_total


@given(st.text(max_size=300))
def test_any_text_is_a_command_blank_or_a_clear_error(line: str) -> None:
    check_total(parse, line)


@given(
    st.one_of(
        st.builds(Command, st.sampled_from(["product", "party"]), st.integers(1, 999999)),
        st.builds(Command, st.sampled_from(BARE)),
    ),
    st.sampled_from(["", " ", "\t"]),
    st.booleans(),
)
def test_a_command_printed_parses_back(cmd: Command, pad: str, upper: bool) -> None:
    text = pad + str(cmd) + pad
    assert parse(text.upper() if upper else text) == cmd


@pytest.mark.parametrize(("word", "mode"), sorted(MODE_WORDS.items()))
def test_modes_by_name(word: str, mode: int) -> None:
    assert parse(word.upper()) == Command("mode", number=mode)


@given(st.text(st.characters(blacklist_categories=("Cc", "Zs", "Zl", "Zp")), min_size=1,
               max_size=150))  # fmt: skip
def test_read_keeps_the_code_as_typed(code: str) -> None:
    assert parse(f"read {code}") == Command("read", text=code.strip())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("product", "needs one number"),
        ("party 0", "1..999999"),
        ("product ٣", "needs one number"),
        ("record now", "takes nothing"),
        ("receive 2", "takes nothing"),
        ("read", "needs a code"),
        ("sell", "unknown command"),
        ("x" * 201, "longer than"),
    ],
)
def test_bad_lines_say_what_is_expected(line: str, message: str) -> None:
    check_refused(parse, line, message)


def test_help_lists_every_command() -> None:
    for word in [*MODE_WORDS, "product", "party", "read", *BARE]:
        assert any(ln.split()[0] == word for ln in HELP.splitlines()), word
