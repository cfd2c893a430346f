"""SQL sources: a table or a query behind a SQLAlchemy URL, read in chunks into polars.

Values keep the database's types; validation types them through the contract like any other
source. SQLite works out of the box; ``postgresql://`` URLs use psycopg 3 (the ``postgres``
extra). The URL may hold a password: it is shown only masked (:func:`~modelyard.errors.mask_url`).
A password may be written without %-encoding, even with ``@`` in it: the credentials end at the
last ``@`` of the URL (:func:`~modelyard.errors.split_credentials`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import polars as pl

from modelyard.config.schema import SqlSource
from modelyard.errors import DataError, MissingExtraError, mask_url, split_credentials

__all__ = ["fingerprint_sql", "iter_sql", "redacted_url", "stream_sql"]


def _url(source: SqlSource) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    raw = source.url.get_secret_value()
    parts = split_credentials(raw)
    if parts is not None:
        scheme, user, password, rest = parts
        if password is not None and "@" in password:
            # SQLAlchemy ends the password at its first '@' and would take the rest of it for
            # the host; %-encode it so that the password is the user's, whole.
            raw = f"{scheme}{user}:{password.replace('@', '%40')}@{rest}"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise DataError(
            "the SQL URL cannot be parsed",
            where="data.source.sql.url",
            expected="a SQLAlchemy URL such as postgresql://user:pass@host:5432/db",
            fix="Check the URL (special characters in a password must be %-encoded).",
        ) from None
    if url.drivername in {"postgresql", "postgres"}:  # psycopg 3, not the default psycopg2
        url = url.set(drivername="postgresql+psycopg")
    return url


def redacted_url(source: SqlSource) -> str:
    """The URL with its password masked, for messages."""
    return mask_url(source.url.get_secret_value())


def _engine(source: SqlSource) -> Any:
    from sqlalchemy import create_engine

    url = _url(source)
    if url.drivername.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise MissingExtraError("psycopg", "postgres", "reading from PostgreSQL") from None
    try:
        return create_engine(url)
    except ImportError as exc:
        raise DataError(
            f"the database driver for '{url.drivername}' is not installed",
            where=redacted_url(source),
            found=str(exc).splitlines()[0],
            fix="Install the driver package, or use another URL scheme.",
        ) from None


def _statement(source: SqlSource) -> Any:
    from sqlalchemy import literal_column, select, table, text

    if source.query is not None:
        return text(source.query)
    assert source.table is not None
    schema, _, name = source.table.rpartition(".")
    return select(literal_column("*")).select_from(table(name, schema=schema or None))


def iter_sql(source: SqlSource) -> Iterator[pl.DataFrame]:
    """The rows of the table or query, ``chunk_size`` rows at a time (a server-side cursor
    where the driver has one)."""
    from sqlalchemy.exc import SQLAlchemyError

    engine = _engine(source)
    where = redacted_url(source)
    what = f"table {source.table}" if source.table else "the query"
    try:
        with engine.connect() as conn:
            result = conn.execution_options(
                stream_results=True, max_row_buffer=source.chunk_size
            ).execute(_statement(source))
            columns = list(result.keys())
            while rows := result.fetchmany(source.chunk_size):
                yield pl.DataFrame(
                    [tuple(r) for r in rows], schema=columns, orient="row", infer_schema_length=None
                )
    except SQLAlchemyError as exc:
        raise DataError(
            f"cannot read {what} from the database",
            where=where,
            found=str(getattr(exc, "orig", None) or exc).splitlines()[0],
            fix="Check the URL, the credentials, the table name or the query, and that the "
            "database is reachable.",
        ) from None
    finally:
        engine.dispose()


def stream_sql(source: SqlSource) -> Iterator[pl.DataFrame]:
    """The non-empty chunks of the table or query, one at a time (never concatenated: a
    result larger than memory streams); :class:`DataError` when there is no row at all."""
    rows = 0
    for chunk in iter_sql(source):
        if chunk.height:
            rows += chunk.height
            yield chunk
    if rows == 0:
        raise DataError(
            "no data rows",
            where=redacted_url(source),
            expected="at least one row",
            found=f"an empty {'table' if source.table else 'result'}",
            fix="Check the table or the query.",
        )


def fingerprint_sql(source: SqlSource) -> str:
    """A content hash of the rows read (streamed chunk by chunk, nothing kept in memory) and of
    the table or query: a database has no cheaper content identity."""
    digest = hashlib.blake2b(digest_size=32)
    digest.update((source.table or source.query or "").encode())
    for chunk in iter_sql(source):
        digest.update(str(chunk.schema).encode())
        digest.update(chunk.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()
