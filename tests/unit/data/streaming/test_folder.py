"""A watched folder: each new file once, bad files quarantined whole, resumable."""

from __future__ import annotations

import os
import time
from pathlib import Path

from modelyard.data.streaming import follow, read_dataset, read_quarantine
from modelyard.data.streaming.manifest import load_manifest

from ._project import write_project


def _drop(folder: Path, name: str, text: str) -> None:
    tmp = folder / f".{name}.tmp"
    tmp.write_text(text, encoding="utf-8")
    old = time.time() - 60
    os.utime(tmp, (old, old))
    tmp.rename(folder / name)  # writers write then rename; a hidden name is ignored


def test_each_new_file_is_ingested_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_project(
        tmp_path,
        {
            "from": "inbox",
            "max_rows": 100,
            "poll_seconds": 0.05,
            "max_seconds": 0.2,
            "settle_seconds": 1,
        },
    )
    _drop(inbox, "a.csv", "id,x,label\n1,1.5,a\n2,2.5,b\n")
    _drop(inbox, "b.csv", "id,x,label\n3,oops,a\n4,4.5,zzz\n5,5.5,\n")
    _drop(inbox, "broken.csv", "id,x,label\n6,1\n")  # ragged: unreadable
    (inbox / "c.csv.part").write_text("id,x,label\n99,1,a\n")  # still being written
    stats = follow(config, until_idle=0.3, handle_signals=False)
    assert stats.records == 6
    data = read_dataset(tmp_path / "data" / "ingested")
    assert sorted(data["id"].to_list()) == [1, 2, 5]
    quarantine = read_quarantine(tmp_path / "data" / "ingested")
    assert quarantine.height == 3
    assert any("unreadable file" in r for r in quarantine["_reasons"].to_list())
    files = load_manifest(tmp_path / "data" / "ingested").files
    assert sorted(Path(f).name for f in files) == ["a.csv", "b.csv", "broken.csv"]

    # restart: nothing again; a new file only
    _drop(inbox, "d.csv", "id,x,label\n7,7.0,b\n")
    stats = follow(config, until_idle=0.3, handle_signals=False)
    assert stats.records == 1
    assert sorted(read_dataset(tmp_path / "data" / "ingested")["id"].to_list()) == [1, 2, 5, 7]


def test_a_fresh_file_waits_until_it_settles(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = write_project(
        tmp_path, {"from": "inbox", "poll_seconds": 0.05, "max_seconds": 0.2, "settle_seconds": 30}
    )
    (inbox / "new.csv").write_text("id,x,label\n1,1,a\n")
    stats = follow(config, until_idle=0.3, handle_signals=False)
    assert stats.records == 0
