"""missing_registration: what a cached run asks the embedded registry, without MLflow."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelyard.ops.tracking import missing_registration

SCHEMA = """CREATE TABLE model_versions (name VARCHAR(256) NOT NULL, version INTEGER NOT NULL,
current_stage VARCHAR(20), source VARCHAR(500), run_id VARCHAR(32), storage_location VARCHAR(500))"""
"""The columns it reads of MLflow's ``model_versions`` table (the e2e tests use MLflow's own)."""


def store(tmp_path: Path, *rows: tuple[str, int, str, str, str, str | None]) -> str:
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute(SCHEMA)
        con.executemany("INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return f"sqlite:///{db}"


def test_a_registered_version_with_its_files_is_not_missing(tmp_path: Path) -> None:
    files = tmp_path / "mlartifacts" / "m-1"
    files.mkdir(parents=True)
    uri = store(tmp_path, ("q", 1, "None", "", "run1", files.as_uri()))
    assert missing_registration(uri, "q", "1", "run1") is None


def test_what_counts_as_missing(tmp_path: Path) -> None:
    gone = (tmp_path / "nowhere").as_uri()
    here = tmp_path.as_uri()
    uri = store(
        tmp_path,
        ("q", 1, "Deleted_Internal", "", "run1", here),
        ("q", 2, "None", "", "other", here),
        ("q", 3, "None", "", "run3", gone),
    )
    assert "missing" in (missing_registration(uri, "q", "1", "run1") or "")
    assert "another run" in (missing_registration(uri, "q", "2", "run2") or "")
    assert "files of model q version 3 are gone" in (
        missing_registration(uri, "q", "3", "run3") or ""
    )
    assert "missing" in (missing_registration(uri, "q", "4", "run4") or "")
    assert "is gone" in (missing_registration(f"sqlite:///{tmp_path}/x.db", "q", "1", "r") or "")
    (tmp_path / "empty.db").touch()
    assert "missing" in (
        missing_registration(f"sqlite:///{tmp_path}/empty.db", "q", "1", "r") or ""
    )


def test_a_server_or_an_unreadable_store_is_not_asked(tmp_path: Path) -> None:
    assert missing_registration("http://127.0.0.1:1", "q", "1", "r") is None
    (tmp_path / "garbage.db").write_bytes(b"not a database, " * 100)
    assert missing_registration(f"sqlite:///{tmp_path}/garbage.db", "q", "1", "r") is None
