"""Sources in a real S3-compatible server (moto) and a real PostgreSQL server."""

from __future__ import annotations

import io
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from modelyard.config.loader import load_config
from modelyard.config.schema import Source
from modelyard.data.sources import fingerprint_source, read_source, read_source_table
from modelyard.data.streaming import follow, read_dataset, read_quarantine
from modelyard.errors import DataError
from tests.conftest import assert_packed
from tests.integration.data_servers import S3_KEY, S3_SECRET
from tests.unit.data.streaming._project import write_project

pytestmark = pytest.mark.integration


def _bucket(options: dict[str, str], name: str) -> object:
    import s3fs

    fs = s3fs.S3FileSystem(
        key=options["key"], secret=options["secret"], endpoint_url=options["endpoint_url"]
    )
    fs.mkdir(name)
    return fs


def test_s3_csv_glob_and_parquet(tmp_path: Path, s3_options: dict[str, str]) -> None:
    fs = _bucket(s3_options, "raw")
    fs.pipe("raw/train/a.csv", b"id,x\n1,1.5\n2,2.5\n")  # type: ignore[attr-defined]
    fs.pipe("raw/train/b.csv", b"id,x\n3,3.5\n")  # type: ignore[attr-defined]
    buf = io.BytesIO()
    pl.DataFrame({"id": [1, 2], "x": [0.5, 1.0]}).write_parquet(buf)
    fs.pipe("raw/t.parquet", buf.getvalue())  # type: ignore[attr-defined]

    csv = Source(path="s3://raw/train/*.csv", storage_options=s3_options)
    df = read_source(csv)
    assert df["id"].to_list() == ["1", "2", "3"]  # CSV as strings, typed later
    parquet = read_source(Source(path="s3://raw/t.parquet", storage_options=s3_options))
    assert parquet.schema["x"] == pl.Float64

    before = fingerprint_source(csv)
    assert fingerprint_source(csv) == before
    fs.pipe("raw/train/b.csv", b"id,x\n3,4.5\n")  # type: ignore[attr-defined]
    assert fingerprint_source(csv) != before

    with pytest.raises(DataError, match="does not exist"):
        read_source(Source(path="s3://raw/nope.csv", storage_options=s3_options))
    with pytest.raises(DataError) as err:
        read_source(Source(path="s3://no-such-bucket/t.parquet", storage_options=s3_options))
    assert S3_SECRET not in str(err.value)


def test_s3_files_stream_in_chunks_with_rejected_lines(
    tmp_path: Path, s3_options: dict[str, str]
) -> None:
    import gzip

    fs = _bucket(s3_options, "big")
    body = "".join(f"{i},v{i}\n" if i != 150 else "150\n" for i in range(300))
    fs.pipe("big/a.csv.gz", gzip.compress(("id,x\n" + body).encode()))  # type: ignore[attr-defined]
    buf = io.BytesIO()
    pl.DataFrame({"id": list(range(300))}).write_parquet(buf, row_group_size=50)
    fs.pipe("big/t.parquet", buf.getvalue())  # type: ignore[attr-defined]

    csv = Source(path="s3://big/a.csv.gz", storage_options=s3_options)
    got = read_source_table(csv, tmp_path / "csv", batch_rows=64, chunk_bytes=100)
    assert got.rows.num_rows == 299
    assert_packed(got.rows.part_rows(), 64)
    assert got.rejected.collect().select("_file", "_line", "_text").rows() == [
        ("s3://big/a.csv.gz", 152, "150")
    ]
    parquet = Source(path="s3://big/t.parquet", storage_options=s3_options)
    got = read_source_table(parquet, tmp_path / "pq", batch_rows=64)
    assert got.rows.collect()["id"].to_list() == list(range(300))
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == ["rejected", "rows"]


def test_s3_config_with_env_credentials_is_redacted(tmp_path: Path, s3_server: str) -> None:
    _bucket({"endpoint_url": s3_server, "key": S3_KEY, "secret": S3_SECRET}, "cfg").pipe(  # type: ignore[attr-defined]
        "cfg/d.csv", b"a,b\n1,2\n"
    )
    doc = {
        "version": 1,
        "name": "s3",
        "data": {
            "source": {
                "path": "s3://cfg/d.csv",
                "storage_options": {
                    "endpoint_url": "${S3_ENDPOINT}",
                    "key": "${S3_KEY}",
                    "secret": "${S3_SECRET}",
                },
            }
        },
    }
    (tmp_path / "modelyard.yaml").write_text(yaml.safe_dump(doc))
    env = {"S3_ENDPOINT": s3_server, "S3_KEY": S3_KEY, "S3_SECRET": S3_SECRET}
    config = load_config(tmp_path / "modelyard.yaml", env=env)
    shown = str(config.model_dump(mode="json"))
    assert S3_SECRET not in shown and S3_KEY not in shown
    assert read_source(config.data.source).height == 1


def test_watched_s3_prefix(tmp_path: Path, s3_options: dict[str, str]) -> None:
    fs = _bucket(s3_options, "inbox")
    fs.pipe("inbox/in/1.csv", b"id,x,label\n1,1.0,a\n2,bad,b\n")  # type: ignore[attr-defined]
    config = write_project(
        tmp_path,
        {
            "from": "s3://inbox/in/",
            "storage_options": s3_options,
            "poll_seconds": 0.1,
            "max_seconds": 0.2,
        },
    )
    assert follow(config, until_idle=0.5, handle_signals=False).records == 2
    fs.pipe("inbox/in/2.csv", b"id,x,label\n3,3.0,a\n")  # type: ignore[attr-defined]
    time.sleep(0.05)
    assert follow(config, until_idle=0.5, handle_signals=False).records == 1
    dataset = tmp_path / "data" / "ingested"
    assert sorted(read_dataset(dataset)["id"].to_list()) == [1, 3]
    assert read_quarantine(dataset).height == 1


def test_postgres_table_and_query_in_chunks(postgres_server: str) -> None:
    import psycopg

    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS people")
        conn.execute("CREATE TABLE people (id int primary key, name text, score double precision)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO people VALUES (%s, %s, %s)",
                [(i, f"p{i}", i / 2) for i in range(1, 8)],
            )
    table = Source.model_validate(
        {"sql": {"url": postgres_server, "table": "public.people", "chunk_size": 3}}
    )
    df = read_source(table)
    assert df.height == 7
    assert df.schema["score"] == pl.Float64
    query = Source.model_validate(
        {"sql": {"url": postgres_server, "query": "SELECT id, name FROM people WHERE id > 5"}}
    )
    assert sorted(read_source(query)["id"].to_list()) == [6, 7]
    before = fingerprint_source(table)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("UPDATE people SET score = 0 WHERE id = 1")
    assert fingerprint_source(table) != before
    with pytest.raises(DataError, match="cannot read table nope"):
        read_source(Source.model_validate({"sql": {"url": postgres_server, "table": "nope"}}))
    secret_url = postgres_server.replace("postgres@", "postgres:hunter2@")
    with pytest.raises(DataError) as err:
        read_source(Source.model_validate({"sql": {"url": secret_url, "table": "nope"}}))
    assert "hunter2" not in str(err.value)
