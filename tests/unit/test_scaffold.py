"""``modelyard init``'s yaml carries the read options the sniffer found."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelyard.scaffold import scaffold


def test_a_title_line_above_the_table_is_skipped(tmp_path: Path) -> None:
    data = tmp_path / "survey.csv"
    rows = "\n".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}" for i in range(60))
    data.write_text("Survey export (March)\nid,group,answer\n" + rows + "\n")
    text, task = scaffold(data, target="answer", name=None, out=tmp_path / "modelyard.yaml")
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert read["skip_rows"] == 1 and read["has_header"] is True and read["separator"] == ","
    assert task == "binary"
