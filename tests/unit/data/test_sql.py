"""SQL sources on SQLite (always available)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from modelyard.config.schema import Source
from modelyard.data.sources import fingerprint_source, read_source
from modelyard.errors import DataError


def _db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT, v REAL)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", [(i, f"n{i}", i * 0.5) for i in range(10)]
        )


def test_sqlite_relative_url_table_query_chunks(tmp_path: Path) -> None:
    _db(tmp_path / "app.db")
    ctx = {"base_dir": tmp_path}
    table = Source.model_validate(
        {"sql": {"url": "sqlite:///app.db", "table": "t", "chunk_size": 3}}, context=ctx
    )
    df = read_source(table)
    assert df.height == 10 and df.columns == ["id", "name", "v"]
    query = Source.model_validate(
        {"sql": {"url": "sqlite:///app.db", "query": "SELECT id FROM t WHERE id < 3"}}, context=ctx
    )
    assert read_source(query)["id"].to_list() == [0, 1, 2]
    fp = fingerprint_source(table)
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("INSERT INTO t VALUES (99, 'x', 1.0)")
    assert fingerprint_source(table) != fp
    assert table.model_dump(mode="json")["sql"]["url"] == "**********"


def test_sql_errors(tmp_path: Path) -> None:
    _db(tmp_path / "app.db")
    with pytest.raises(ValueError, match="exactly one of 'table' or 'query'"):
        Source.model_validate({"sql": {"url": "sqlite:///x.db"}})
    url = f"sqlite:///{tmp_path / 'app.db'}"
    with pytest.raises(DataError, match="cannot read table missing"):
        read_source(Source.model_validate({"sql": {"url": url, "table": "missing"}}))
    with pytest.raises(DataError, match="no data rows"):
        read_source(
            Source.model_validate({"sql": {"url": url, "query": "SELECT * FROM t WHERE 0"}})
        )


PASSWORD = "p@ss/w:rd#x"


def test_a_password_with_reserved_characters_is_used_whole_and_never_shown() -> None:
    """Issue 11 item 17: masking stopped at the first '@' and leaked 'ss/w:rd#x'."""
    pytest.importorskip("psycopg")
    from modelyard.data.sql import _url

    source = Source.model_validate(
        {"sql": {"url": f"postgresql://me:{PASSWORD}@127.0.0.1:9/app", "table": "t"}}
    )
    url = _url(source.sql)  # type: ignore[arg-type]
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "me", PASSWORD, "127.0.0.1", 9, "app",
    )  # fmt: skip
    with pytest.raises(DataError) as err:
        read_source(source)  # nothing listens on port 9
    message = str(err.value)
    assert "postgresql://me:***@127.0.0.1:9/app" in message
    for piece in ("p@ss", "ss/w", "w:rd", "rd#x", "%40", "%23"):
        assert piece not in message
