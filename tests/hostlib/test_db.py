"""hostlib.db: SQLite's placeholders translated for psycopg, outside quoted text and casts."""

from __future__ import annotations

from hostlib.db import to_pyformat


def test_positional_and_named_placeholders() -> None:
    assert to_pyformat("SELECT ? , :name, :b_2") == "SELECT %s , %(name)s, %(b_2)s"


def test_quotes_casts_and_percent_are_kept() -> None:
    sql = "SELECT a::int, ':x ?', \"c:d\" FROM t WHERE x LIKE 'a%' AND y = :y"
    assert to_pyformat(sql) == (
        "SELECT a::int, ':x ?', \"c:d\" FROM t WHERE x LIKE 'a%%' AND y = %(y)s"
    )
