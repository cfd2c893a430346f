"""Excel workbooks as a source (the ``excel`` extra): a sheet read with its cells' types."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from modelyard.config.schema import ReadOptions, Source
from modelyard.data.sources import read_source, read_source_table
from modelyard.errors import DataError, MissingExtraError


def _workbook(path: Path) -> Path:
    book = xlsxwriter.Workbook(path)
    notes = book.add_worksheet("notes")
    notes.write_row(0, 0, ["not the data"])
    sheet = book.add_worksheet("clients")
    sheet.write_row(0, 0, ["Exported 2026-03-01"])  # a title line above the table
    sheet.write_row(1, 0, ["id", "amount", "city", "since", "code"])
    when = book.add_format({"num_format": "yyyy-mm-dd"})
    for i in range(30):
        sheet.write_number(2 + i, 0, i)
        if i == 7:
            sheet.write_string(2 + i, 1, "N/A")  # text among numbers: a text column
        else:
            sheet.write_number(2 + i, 1, i * 1.5)
        sheet.write_string(2 + i, 2, ["Zürich", "Köln", "São Paulo"][i % 3])
        sheet.write_datetime(2 + i, 3, dt.datetime(2020, 1, 1 + i), when)
        sheet.write_string(2 + i, 4, f"{i:04d}")  # text that looks like a number stays text
    book.close()
    return path


def test_a_sheet_by_name_with_a_title_line_above(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "clients.xlsx")
    df = read_source(Source(path=path, read=ReadOptions(sheet="clients", skip_rows=1)))
    assert df.columns == ["id", "amount", "city", "since", "code"]
    assert df.height == 30
    assert df["city"][:3].to_list() == ["Zürich", "Köln", "São Paulo"]
    # every cell as text, as a CSV's: the contract types the columns, validation judges the
    # text among numbers (a typed read turned "N/A" into a null, unseen)
    assert df["since"][0] == "2020-01-01 00:00:00" and df["code"][3] == "0003"
    assert df["amount"][:3].to_list() == ["0", "1.5", "3"] and df["amount"][7] == "N/A"
    assert set(df.schema.values()) == {pl.String}
    by_position = read_source(Source(path=path, read=ReadOptions(sheet=2, skip_rows=1)))
    assert by_position.equals(df)
    # the first sheet by default: here a header only
    with pytest.raises(DataError, match="no data rows"):
        read_source(Source(path=path))


def test_an_excel_source_streams_into_a_table_like_any_other(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "clients.xlsx")
    read = ReadOptions(sheet="clients", skip_rows=1, null_values=["N/A"])
    ingested = read_source_table(Source(path=path, read=read), tmp_path / "t", batch_rows=8)
    assert ingested.rows.num_rows == 30 and len(ingested.rows.parts()) == 4
    assert ingested.rows.scan().collect()["amount"].null_count() == 1


def test_excel_errors_say_what_and_how_to_fix(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "clients.xlsx")
    with pytest.raises(DataError) as err:
        read_source(Source(path=path, read=ReadOptions(sheet="Clients")))
    assert err.value.what == "the workbook has no sheet 'Clients'"
    assert "'notes', 'clients'" in (err.value.expected or "")
    with pytest.raises(DataError) as err:
        read_source(Source(path=path, read=ReadOptions(sheet=3)))
    assert "no sheet 3" in err.value.what
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not a workbook")
    with pytest.raises(DataError) as err:
        read_source(Source(path=broken))
    assert err.value.what == "cannot read the file as an Excel workbook"
    with pytest.raises(ValueError, match="counts from 1"):
        ReadOptions(sheet=0)


def test_without_the_extra_the_message_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _workbook(tmp_path / "clients.xlsx")
    monkeypatch.setitem(sys.modules, "fastexcel", None)  # as if not installed
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "fastexcel" else real(name, *a),
    )
    with pytest.raises(MissingExtraError) as err:
        read_source(Source(path=path))
    assert "modelyard[excel]" in (err.value.fix or "")
