"""The line parser both Linux terminals share (:mod:`edge_agent.terminal.commands`): total
for any words an app names, and a command it prints parses back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.terminal.commands import Command, InputError, help_text, parse_line
from tests.edge_agent.consoles import check_refused, check_total

WORDS = st.from_regex(r"[a-z]{1,8}", fullmatch=True)


def _echo(args: list[str], line: str) -> Command:
    if len(args) != 1:
        raise InputError("echo needs one word")
    return Command("echo", text=args[0])


@given(st.dictionaries(WORDS, st.integers(1, 10**6), max_size=3),
       st.lists(WORDS, max_size=3), st.text(max_size=250))  # fmt: skip
def test_any_line_is_a_command_blank_or_a_clear_error(
    numbered: dict[str, int], bare: list[str], line: str
) -> None:
    check_total(lambda ln: parse_line(ln, numbered, bare, {"echo": _echo}), line)


@given(st.one_of(
    st.builds(Command, st.just("take"), st.integers(1, 500)),
    st.builds(Command, st.just("stop")),
    st.builds(lambda t: Command("echo", text=t), st.from_regex(r"\S{1,20}", fullmatch=True)),
))  # fmt: skip
def test_a_command_printed_parses_back(cmd: Command) -> None:
    assert parse_line(str(cmd), {"take": 500}, ("stop",), {"echo": _echo}) == cmd


def test_what_is_refused_and_the_help_text() -> None:
    def parse(ln: str) -> Command | None:
        return parse_line(ln, {"take": 5}, ("stop",), {})

    for line, message in [
        ("take 6", "1..5, not 6"),
        ("take", "needs one number"),
        ("stop now", "takes nothing"),
        ("go", "unknown command"),
        ("x" * 201, "longer than 200"),
    ]:
        check_refused(parse, line, message)
    assert parse("  ") is None
    assert help_text("intro::\n\n    a   b\n\n:func:`x` rest") == "    a   b"
    assert help_text(None) == ""
