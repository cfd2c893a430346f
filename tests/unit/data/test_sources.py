"""Tests of modelyard.data.sources: real datasets, hostile files, and a round-trip property."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from modelyard.config.schema import ReadOptions, Source, ValueMap
from modelyard.config.schema import TestSource as HoldOut
from modelyard.data.sources import (
    fingerprint_files,
    fingerprint_source,
    infer_task,
    read_source,
    read_source_table,
    read_test,
    separator_hint,
    sniff_csv,
    source_files,
    unique_names,
)
from modelyard.errors import DataError
from tests.conftest import ADULT_COLUMNS


def _csv(path: Path, text: str | bytes, **read: Any) -> Source:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return Source(path=path, read=ReadOptions(**read))


def _error(source: Source, **kwargs: Any) -> DataError:
    with pytest.raises(DataError) as info:
        read_source(source, **kwargs)
    return info.value


# =========================================================================== real data


@pytest.fixture(scope="module")
def adult_source(shared_data: Path) -> Source:
    return Source(
        path=shared_data / "adult" / "adult.data",
        read=ReadOptions(
            has_header=False,
            columns=ADULT_COLUMNS,
            separator=",",
            strip_whitespace=True,
            null_values=["?"],
        ),
    )


def test_adult_train_and_test(shared_data: Path, adult_source: Source) -> None:
    normalize = {"income": ValueMap(strip_suffix=".")}
    train = read_source(adult_source, normalize=normalize)
    test = read_test(
        HoldOut(path=shared_data / "adult" / "adult.test", read={"skip_rows": 1}),
        adult_source,
        normalize=normalize,
    )
    assert train.shape == (32_561, 15)
    assert test.shape == (16_281, 15)
    assert train.columns == ADULT_COLUMNS
    assert all(dtype == pl.String for dtype in train.dtypes)
    # the trailing blank line gives no all-null row
    assert not train.select(pl.all_horizontal(pl.all().is_null())).to_series().any()
    assert train["workclass"].null_count() == 1_836
    assert train["occupation"].null_count() == 1_843
    assert train["native-country"].null_count() == 583
    assert test["workclass"].null_count() == 963
    assert set(train["income"]) == set(test["income"]) == {"<=50K", ">50K"}
    assert train["income"].value_counts().sort("income")["count"].to_list() == [24_720, 7_841]
    assert train["age"][0] == "39"  # stripped, raw string
    assert infer_task(train["income"]) == "binary"


def test_adult_sample_and_drop(adult_source: Source) -> None:
    a = read_source(adult_source, sample=100, seed=7, drop=["fnlwgt"])
    b = read_source(adult_source, sample=100, seed=7, drop=["fnlwgt"])
    c = read_source(adult_source, sample=100, seed=8, drop=["fnlwgt"])
    assert a.shape == (100, 14)
    assert "fnlwgt" not in a.columns
    assert a.equals(b)
    assert not a.equals(c)


def test_titanic(shared_data: Path) -> None:
    df = read_source(Source(path=shared_data / "titanic.csv"))
    assert df.shape == (891, 15)
    assert df["age"].null_count() == 177
    assert df["deck"].null_count() == 688
    assert df["embarked"].null_count() == 2
    assert df["adult_male"][0] == "True"
    assert infer_task(df["survived"]) == "binary"


def test_bike_sharing_crlf(shared_data: Path) -> None:
    df = read_source(
        Source(
            path=shared_data / "bike_sharing" / "hour.csv",
            read=ReadOptions(parse_dates=["dteday"], dtypes={"cnt": "int"}),
        )
    )
    assert df.shape == (17_379, 17)
    assert df.columns[-1] == "cnt"  # no stray "\r"
    assert df["cnt"].str.contains("\r").sum() == 0
    assert df["dteday"].dtype == pl.String  # hints only: typing is the contract's job
    assert df["dteday"][0] == "2011-01-01"
    assert infer_task(df["cnt"]) == "regression"


def test_wine_quoted_header_and_glob(shared_data: Path) -> None:
    red = read_source(
        Source(
            path=shared_data / "wine_quality" / "winequality-red.csv",
            read=ReadOptions(separator=";"),
        )
    )
    assert red.shape == (1_599, 12)
    assert red.columns[0] == "fixed acidity"
    assert red.columns[-1] == "quality"
    assert infer_task(red["quality"]) == "multiclass"
    both = read_source(
        Source(
            path=shared_data / "wine_quality" / "winequality-*.csv",
            read=ReadOptions(separator=";"),
        )
    )
    assert both.shape == (1_599 + 4_898, 12)


def test_kddcup_gzip(shared_data: Path) -> None:
    names_file = shared_data / "kddcup99" / "kddcup.names"
    lines = names_file.read_text().splitlines()[1:]
    names = [line.split(":")[0] for line in lines if ":" in line] + ["label"]
    df = read_source(
        Source(
            path=shared_data / "kddcup99" / "kddcup.data_10_percent.gz",
            read=ReadOptions(has_header=False, columns=names),
        )
    )
    assert df.shape == (494_021, 42)
    assert df["label"].n_unique() == 23
    assert df["label"][0] == "normal."


@pytest.mark.parametrize(
    ("name", "rows", "first", "task"),
    [
        ("breast_cancer", 569, "malignant", "binary"),
        ("iris", 150, "setosa", "multiclass"),
        ("wine", 178, "class_0", "multiclass"),
        ("diabetes", 442, 151.0, "regression"),
    ],
)
def test_builtin(name: str, rows: int, first: object, task: str) -> None:
    source = Source.model_validate({"builtin": name})
    df = read_source(source)
    assert df.height == rows
    assert df.columns[-1] == "target"
    assert df["target"][0] == first
    assert infer_task(df["target"]) == task
    assert fingerprint_source(source).startswith(f"builtin:{name}:")


# =========================================================================== formats


def test_parquet_json_ndjson_keep_types(tmp_path: Path) -> None:
    frame = pl.DataFrame({"a": [1, 2, 3], "b": [" x ", "?", ""], "c": [1.5, None, 2.0]})
    frame.write_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.json").write_text(json.dumps(frame.to_dicts()))
    (tmp_path / "t.ndjson").write_text("\n".join(json.dumps(r) for r in frame.to_dicts()) + "\n")
    opts = ReadOptions(strip_whitespace=True, null_values=["?"])
    for name in ("t.parquet", "t.json", "t.ndjson"):
        df = read_source(Source(path=tmp_path / name, read=opts))
        assert df["a"].dtype == pl.Int64, name
        assert df["a"].to_list() == [1, 2, 3]
        assert df["b"].to_list() == ["x", None, None], name
        assert df["c"].to_list() == [1.5, None, 2.0]


def test_gzipped_csv_and_explicit_format(tmp_path: Path) -> None:
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert read_source(Source(path=tmp_path / "t.csv.gz")).rows() == [("1", "2")]
    (tmp_path / "t.weird").write_text("a,b\n1,2\n")
    src = Source(path=tmp_path / "t.weird", format="csv")
    assert read_source(src).rows() == [("1", "2")]
    err = _error(Source(path=tmp_path / "t.weird"))
    assert "format" in err.what and "data.source.format" in (err.fix or "")


def test_blank_lines_comments_and_options(tmp_path: Path) -> None:
    src = _csv(
        tmp_path / "t.csv",
        "junk first line\n# comment\n x ; y \n1;2\n\n# more\n 3 ;NA\n   \n\n",
        separator=";",
        skip_rows=1,
        comment_prefix="#",
        strip_whitespace=True,
        null_values=["NA"],
    )
    df = read_source(src)
    assert df.columns == ["x", "y"]
    assert df.rows() == [("1", "2"), ("3", None)]


def test_columns_rename_header(tmp_path: Path) -> None:
    df = read_source(_csv(tmp_path / "t.csv", "a,b\n1,2\n", columns=["x", "y"]))
    assert df.columns == ["x", "y"]
    assert df.rows() == [("1", "2")]


def test_quoted_values_and_empty_is_null(tmp_path: Path) -> None:
    df = read_source(_csv(tmp_path / "t.csv", 'a,b,c\n"1,5","",x\n"say ""hi""",,\n'))
    assert df.rows() == [("1,5", None, "x"), ('say "hi"', None, None)]


def test_latin1_encoding(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", "name,v\nété,1\n".encode("latin-1"), encoding="latin1")
    assert read_source(src).rows() == [("été", "1")]


_UNICODE_TEXT = 'name,v\r\n"été, ✓",1\r\n😀 emoji,2\r\n"two\r\nlines",3\r\n'


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    codec=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"]),
    gzipped=st.booleans(),
    chunk_bytes=st.integers(1, 40),
)
def test_a_utf16_file_with_its_byte_order_mark_is_read_as_utf8(
    tmp_path: Path, codec: str, gzipped: bool, chunk_bytes: int
) -> None:
    # Excel's "Unicode Text" and Windows tools write UTF-16 with a byte-order mark; before,
    # ingest stopped at its NUL bytes ("the file looks binary")
    mark = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[codec]
    data = mark + _UNICODE_TEXT.encode(codec)
    name = "t.csv.gz" if gzipped else "t.csv"
    src = _csv(tmp_path / name, gzip.compress(data) if gzipped else data)
    expected = [("été, ✓", "1"), ("😀 emoji", "2"), ("two\r\nlines", "3")]
    assert read_source(src).rows() == expected
    out = tmp_path / f"out-{chunk_bytes}-{codec}-{gzipped}"
    got = read_source_table(src, out, chunk_bytes=chunk_bytes)
    assert got.rows.collect().rows() == expected


def test_a_utf16_file_that_breaks_off_is_a_clear_error(tmp_path: Path) -> None:
    whole = _UNICODE_TEXT.encode("utf-16")
    for broken in (whole + b"\x00", whole + "\ud800".encode("utf-16-le", "surrogatepass")):
        err = _error(_csv(tmp_path / "t.csv", broken))
        assert err.what == "the file is not valid UTF-16 text"
        assert "Re-save the file as UTF-8" in (err.fix or "")


def test_sniff_a_utf16_file(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("a\tb\tc\n1\tx\t2.5\n2\ty\t3.5\n".encode("utf-16"))
    options = sniff_csv(path).options
    assert options.separator == "\t" and options.has_header
    path.write_bytes("1\t2.5\n2\t3.5\n3\t4.5\n".encode("utf-16"))
    assert not sniff_csv(path).options.has_header  # numbers, read as numbers: no header
    # as ingest reads it: gzip by content, not by name, and UTF-16 inside it
    path.write_bytes(gzip.compress("a;b\n1;x\n2;y\n".encode("utf-16")))
    assert sniff_csv(path).options.separator == ";"


def test_sniff_guesses_the_encoding(tmp_path: Path) -> None:
    # a Windows export (cp1252) stopped init: "not valid utf8 text ... set read.encoding" in a
    # modelyard.yaml init was about to write
    path = tmp_path / "t.csv"
    text = "id;city;note\n1;Zürich;café “ok”\n2;Köln;naïve – 5€\n3;São Paulo;x\n"
    path.write_bytes(text.encode("cp1252"))
    options = sniff_csv(path).options
    assert options.encoding == "cp1252" and options.separator == ";" and options.has_header
    assert read_source(Source(path=path, read=options))["city"].to_list() == [
        "Zürich", "Köln", "São Paulo",
    ]  # fmt: skip
    path.write_bytes(text.encode("utf-8"))
    assert sniff_csv(path).options.encoding == "utf8"
    # bytes cp1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d): latin1, which reads any byte
    path.write_bytes(b"a,b\n1,\x81x\n2,\xe9\n")
    assert sniff_csv(path).options.encoding == "latin1"
    # a UTF-8 character cut by the end of the sniffed head is still UTF-8
    head = b"a,b\n" + b"1,x\n" * ((1 << 20) // 4 - 2) + b"1,\xc3"
    path.write_bytes(head[: 1 << 20] + b"\xa9\n2,y\n")
    assert sniff_csv(path).options.encoding == "utf8"


def test_decimal_comma(tmp_path: Path) -> None:
    # European spreadsheets write 54,93 (and 1.234,5): read as text, then the contract called
    # such a column an identifier, dropping the numbers from the features
    text = "id;score;big;note\n1;54,93;1.234,5;a,b\n2;-0,5;12,0;1,2,3\n3;7;999;\n"
    df = read_source(_csv(tmp_path / "t.csv", text, separator=";", decimal_comma=True))
    path = tmp_path / "t.csv"
    assert df["score"].to_list() == ["54.93", "-0.5", "7"]
    assert df["big"].to_list() == ["1234.5", "12.0", "999"]
    assert df["note"].to_list() == ["a,b", "1,2,3", None]  # not numbers: as they are
    options = sniff_csv(path).options
    assert options.separator == ";" and options.decimal_comma
    # a comma-separated file, or one whose numbers use a point: no
    _csv(tmp_path / "t.csv", "a;b\n1.5;x,y\n2.5;z\n", separator=";")
    assert not sniff_csv(path).options.decimal_comma
    _csv(tmp_path / "t.csv", 'a,b\n"1,5",x\n"2,5",z\n')
    assert not sniff_csv(path).options.decimal_comma


def test_date_format(tmp_path: Path) -> None:
    # read.date_format was documented and ignored: every value of a parse_dates column in that
    # format was unreadable, and validation quarantined every row
    text = "when,at,other\n28/7/2022,28/07/2022 13:05,3/4/2020\n2/5/2018,,x\n31/2/2018,bad,y\n"
    df = read_source(
        _csv(tmp_path / "t.csv", text, parse_dates=["when", "at"], date_format="%d/%m/%Y")
    )
    # values in the format become ISO; the others stay as they are (validation judges them)
    assert df["when"].to_list() == ["2022-07-28", "2018-05-02", "31/2/2018"]
    assert df["other"].to_list() == ["3/4/2020", "x", "y"]  # not a date column: untouched
    assert df["at"].to_list() == ["28/07/2022 13:05", None, "bad"]  # not that format
    df = read_source(
        _csv(tmp_path / "t.csv", text, dtypes={"at": "datetime"}, date_format="%d/%m/%Y %H:%M")
    )
    assert df["at"].to_list() == ["2022-07-28 13:05:00", None, "bad"]
    assert df["when"].to_list() == ["28/7/2022", "2/5/2018", "31/2/2018"]


def test_normalize(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", "y,z\nYES.,a\nno.,b\n,c\n")
    df = read_source(
        src,
        normalize={
            "y": ValueMap(strip_suffix=".", lowercase=True, map={"yes": "1", "no": "0"}),
            "z": ValueMap(strip_prefix="a", map={"b": "B"}),
        },
    )
    assert df["y"].to_list() == ["1", "0", None]
    assert df["z"].to_list() == ["", "B", "c"]


def test_sample_larger_than_rows(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", "a\n1\n2\n3\n")
    assert read_source(src, sample=10).height == 3
    assert read_source(src, sample=2, seed=1)["a"].to_list() in (["1", "2"], ["1", "3"], ["2", "3"])


def test_read_test_overrides(tmp_path: Path) -> None:
    train = _csv(tmp_path / "train.csv", "a;b\n1;x\n", separator=";", null_values=["?"])
    (tmp_path / "test.csv").write_text("skip me\na;b\n?;y.\n")
    df = read_test(
        HoldOut(path=tmp_path / "test.csv", read={"skip_rows": 1}),
        train,
        normalize={"b": ValueMap(strip_suffix=".")},
        drop=["a"],
    )
    assert df.rows() == [("y",)]


# =========================================================================== hostile input


def test_missing_file_with_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a\n1\n")
    err = _error(Source(path=tmp_path / "trian.csv"))
    assert "does not exist" in err.what
    assert err.where == str(tmp_path / "trian.csv")
    assert "train.csv" in (err.fix or "")


def test_glob_matching_nothing(tmp_path: Path) -> None:
    err = _error(Source(path=tmp_path / "*.csv"))
    assert "matches no file" in err.what
    assert err.where == str(tmp_path / "*.csv")
    with pytest.raises(DataError, match="matches no file"):
        source_files(tmp_path / "missing" / "*.csv")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    err = _error(Source(path=tmp_path))
    assert "directory" in err.what
    assert "*.csv" in (err.fix or "")


def test_empty_file(tmp_path: Path) -> None:
    for name in ("t.csv", "t.parquet", "t.json"):
        (tmp_path / name).write_bytes(b"")
        err = _error(Source(path=tmp_path / name))
        assert "empty" in err.what, name
        assert err.found == "0 bytes"
        assert err.where == str(tmp_path / name)


def test_header_only(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", "a,b,c\n"))
    assert err.what == "no data rows"
    assert err.found == "a header only"
    assert err.where == str(tmp_path / "t.csv")
    err = _error(_csv(tmp_path / "u.csv", "a,b,c\n\n\n"))
    assert err.what == "no data rows"


def _ingest(source: Source, folder: Path, **kwargs: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    got = read_source_table(source, folder, **kwargs)
    return got.rows.collect(), got.rejected.collect()


def test_truncated_last_line_is_rejected_not_fatal(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", "a,b,c\n1,2,3\n4,5,6\n7,8")
    rows, rejected = _ingest(src, tmp_path / "out")
    assert rows.rows() == [("1", "2", "3"), ("4", "5", "6")]
    assert rejected.rows() == [
        (
            str(tmp_path / "t.csv"),
            4,
            "7,8",
            "line 4 has 2 fields, expected 3 separated by ',': the line may be truncated (an "
            "interrupted copy?): repair or remove it",
        )
    ]
    # the whole-frame reader has nowhere to put the line: it still refuses, naming it
    err = _error(src)
    assert err.what.startswith("line 4 has 2 fields, expected 3")
    assert err.where == f"{tmp_path / 't.csv'}:4"
    assert err.found is not None and "7,8" in err.found
    assert "truncated" in (err.fix or "")


def test_ragged_line_with_more_fields_and_no_header(tmp_path: Path) -> None:
    src = _csv(
        tmp_path / "t.csv",
        "junk\n1,2\n3,4,5\n6,7\n",
        has_header=False,
        columns=["a", "b"],
        skip_rows=1,
    )
    rows, rejected = _ingest(src, tmp_path / "out")
    assert rows.rows() == [("1", "2"), ("6", "7")]
    assert rejected["_line"].to_list() == [3]
    assert rejected["_text"].to_list() == ["3,4,5"]
    assert "separator" in rejected["_reasons"][0]


def test_ragged_line_in_file_with_multiline_quotes(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", 'a,b\n1,"two\nlines"\n3\n')
    rows, rejected = _ingest(src, tmp_path / "out")
    assert rows.rows() == [("1", "two\nlines")]
    assert rejected.select("_line", "_text").rows() == [(4, "3")]


def test_no_line_is_a_row_is_an_error(tmp_path: Path) -> None:
    # every line ragged (a wrong separator): an error naming the first line, not 0 rows
    src = _csv(tmp_path / "t.csv", "a;b;c\n1,2,3\n4,5,6\n", separator=",")
    with pytest.raises(DataError) as info:
        read_source_table(src, tmp_path / "out")
    err = info.value
    assert "no line can be read as a row" in err.what
    assert err.where == f"{tmp_path / 't.csv'}:2"
    assert err.found is not None and "1 more line(s)" in err.found
    assert not (tmp_path / "out" / "rows").exists()  # no half table left behind


def test_quoted_separator_is_not_ragged(tmp_path: Path) -> None:
    df = read_source(_csv(tmp_path / "t.csv", 'a,b\n"x,y",2\n"q""r",3\n'))
    assert df.rows() == [("x,y", "2"), ('q"r', "3")]


def test_a_quote_inside_an_unquoted_value_is_part_of_it(tmp_path: Path) -> None:
    # polars refuses these lines; the csv module's rule (and pandas'): a quote opens a quoted
    # value only at the value's start
    df = read_source(_csv(tmp_path / "t.csv", 'a,b\n1,2\nq"r,3\nMonitor 24" wide,4\n'))
    assert df.rows() == [("1", "2"), ('q"r', "3"), ('Monitor 24" wide', "4")]


def test_lines_ending_in_a_bare_cr_are_read(tmp_path: Path) -> None:
    # classic Mac line ends (old Excel for Mac): before, the csv module's "new-line character
    # seen in unquoted field" stopped ingest
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b\r1,2\r"x\ry",4\r')
    for chunk in (2, 7, 1 << 20):
        got = read_source_table(Source(path=path), tmp_path / f"o{chunk}", chunk_bytes=chunk)
        assert got.rows.collect().rows() == [("1", "2"), ("x\ny", "4")]


def test_a_file_read_as_one_column_names_the_separator_to_set() -> None:
    comma = ReadOptions()
    hint = separator_hint(["x;c;y"], comma)
    assert hint is not None and "separator: ';'" in hint
    assert "separator: '\\t'" in (separator_hint(["x\tc"], comma) or "")
    excel = separator_hint(["sep=;"], comma)  # Excel's first line
    assert excel is not None and "skip_rows: 1" in excel and "separator: ';'" in excel
    assert separator_hint(["x", "y"], comma) is None  # several columns: the separator works
    assert separator_hint(["xcy"], comma) is None  # nothing that looks like a separator
    assert separator_hint(["x,c"], ReadOptions(separator=";")) is not None


def test_a_stray_quote_rejects_its_line_only(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", 'a,b\n1,2\n"open,3\n4,5\n"x"y,6\n7,8\n')
    rows, rejected = _ingest(src, tmp_path / "out")
    assert rows.rows() == [("1", "2"), ("4", "5"), ("7", "8")]
    assert rejected["_line"].to_list() == [3, 5]
    assert rejected["_text"].to_list() == ['"open,3', '"x"y,6']
    assert rejected["_reasons"][0].startswith(
        "line 3 has a quote that opens a value which does not close"
    )
    assert "cleanly" in rejected["_reasons"][1]  # text after the closing quote


def test_the_whole_table_reader_names_an_unbalanced_quote_with_a_quoting_fix(
    tmp_path: Path,
) -> None:
    err = _error(_csv(tmp_path / "t.csv", 'a,b\n1,2\n"open,3\n4,5\n'))
    assert err.where == f"{tmp_path / 't.csv'}:3"
    assert "a quote that opens a value" in err.what
    assert "JSON" not in (err.fix or "") and "quoted whole" in (err.fix or "")


def test_an_unbalanced_quote_in_the_header_is_an_error(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", 'a,"b\n1,2\n'))
    assert err.what == "the header has an unbalanced quote"
    assert err.where == f"{tmp_path / 't.csv'}:1"


def test_wrong_encoding(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", "name,v\nabc,1\nété,2\n".encode("latin-1")))
    assert "not valid utf8" in err.what
    assert err.where == f"{tmp_path / 't.csv'}:3"
    assert "encoding: latin1" in (err.fix or "")


def test_columns_count_mismatch(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", "1,2,3\n4,5,6\n", has_header=False, columns=["a", "b"]))
    assert "read.columns" in err.what
    assert err.expected is not None and "3 names" in err.expected
    assert err.found == "2 names"
    err = _error(_csv(tmp_path / "u.csv", "1,2,3\n", has_header=False))
    assert "no column names" in err.what and "read.columns" in (err.fix or "")


def test_duplicate_column_names(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", "a,b,a\n1,2,3\n"))
    assert err.what == "duplicate column names"
    assert err.found is not None and "'a'" in err.found
    err = _error(_csv(tmp_path / "u.csv", " a ,a\n1,2\n", strip_whitespace=True))
    assert err.what == "duplicate column names"
    err = _error(_csv(tmp_path / "v.csv", "1,2\n", has_header=False, columns=["x", "x"]))
    assert err.what == "duplicate column names"


def test_empty_header_name(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", ",a\n1,2\n"))
    assert "without a name" in err.what
    assert err.found is not None and "column 1" in err.found


def test_binary_garbage(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", bytes(range(256)) * 8))
    assert "binary" in err.what
    (tmp_path / "p.parquet").write_bytes(b"this is not parquet at all")
    err = _error(Source(path=tmp_path / "p.parquet"))
    assert "Parquet" in err.what
    assert err.found is not None and "PAR1" in err.found
    (tmp_path / "z.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n" * 100)[:-10])
    err = _error(Source(path=tmp_path / "z.csv.gz"))
    assert "gzip" in err.what


def test_malformed_json(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('[\n {"a": 1},\n {"a": 2,,}\n]\n')
    err = _error(Source(path=tmp_path / "t.json"))
    assert "JSON" in err.what
    assert err.where == f"{tmp_path / 't.json'}:3"
    (tmp_path / "t.ndjson").write_text('{"a": 1}\n{"a": \n')
    err = _error(Source(path=tmp_path / "t.ndjson"))
    assert "JSON" in err.what
    assert err.where == f"{tmp_path / 't.ndjson'}:2"
    rows, rejected = _ingest(Source(path=tmp_path / "t.ndjson"), tmp_path / "out")
    assert rows.rows() == [(1,)]
    assert rejected.select("_line", "_text").rows() == [(2, '{"a": ')]
    (tmp_path / "u.ndjson").write_text('{"a": \n[1]\n')
    err = _error(Source(path=tmp_path / "u.ndjson"))
    assert "NDJSON" in err.what and err.where == f"{tmp_path / 'u.ndjson'}:1"


def test_glob_with_differing_columns(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,z\n3,4\n")
    err = _error(Source(path=tmp_path / "*.csv"))
    assert err.where == str(tmp_path / "b.csv")
    assert err.expected is not None and "'y'" in err.expected
    assert err.found is not None and "missing 'y'" in err.found and "extra 'z'" in err.found


def test_unknown_columns_did_you_mean(tmp_path: Path) -> None:
    src = _csv(tmp_path / "t.csv", "income,age\n1,2\n")
    err = _error(src, normalize={"incme": ValueMap(lowercase=True)})
    assert "'incme'" in err.what and "normalize" in err.what
    assert err.fix == "Did you mean 'income'?"
    assert err.expected is not None and "'age'" in err.expected
    err = _error(src, drop=["agee"])
    assert err.fix == "Did you mean 'age'?"
    err = _error(_csv(tmp_path / "u.csv", "when,v\n1,2\n", parse_dates=["wen"]))
    assert "read.parse_dates" in err.what and "'when'" in (err.fix or "")


def test_bad_separator(tmp_path: Path) -> None:
    err = _error(_csv(tmp_path / "t.csv", "a, b\n1, 2\n", separator=", "))
    assert "single character" in err.what
    assert "strip_whitespace" in (err.fix or "")


# =========================================================================== fingerprints


def test_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n2\n")
    one = fingerprint_files([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert one == fingerprint_source(Source(path=tmp_path / "*.csv"))
    assert len(one) == 64
    (tmp_path / "b.csv").write_text("x\n3\n")
    assert fingerprint_files([tmp_path / "a.csv", tmp_path / "b.csv"]) != one
    (tmp_path / "c.csv").write_text("x\n1\n")
    assert fingerprint_files([tmp_path / "a.csv"]) != fingerprint_files([tmp_path / "c.csv"])
    other = tmp_path / "moved"
    other.mkdir()
    (other / "a.csv").write_text("x\n1\n")
    assert fingerprint_files([tmp_path / "a.csv"]) == fingerprint_files([other / "a.csv"])


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as settled (their change time cannot be set back)."""
    from modelyard.data import sources

    monkeypatch.setattr(sources, "_SETTLE_SECONDS", 0)


def test_known_fingerprints_skip_reading_untouched_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    data, known = tmp_path / "a.csv", tmp_path / "state" / "fingerprints.json"
    data.write_text("x\n1\n")
    first = fingerprint_files([data], remember_in=known)
    assert first == fingerprint_files([data])  # the same fingerprint, remembered or not
    assert known.is_file()

    real_open = Path.open

    def watched(self: Path, *args: Any, **kwargs: Any) -> Any:
        assert self != data, "an untouched file was read again"
        return real_open(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(Path, "open", watched)
        assert fingerprint_files([data], remember_in=known) == first


def test_known_fingerprints_see_every_change(tmp_path: Path, settled: None) -> None:
    data, known = tmp_path / "a.csv", tmp_path / "fingerprints.json"
    data.write_text("x\n1\n")
    first = fingerprint_files([data], remember_in=known)
    stat = data.stat()
    data.write_text("x\n2\n")  # same size, and the modification time put back
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint_files([data], remember_in=known) != first  # the change time moved
    assert fingerprint_files([data], remember_in=known) == fingerprint_files([data])


def test_a_file_written_just_now_is_not_remembered(tmp_path: Path) -> None:
    data, known = tmp_path / "a.csv", tmp_path / "fingerprints.json"
    data.write_text("x\n1\n")  # modified now: a write in the same clock tick could follow
    fingerprint_files([data], remember_in=known)
    assert not known.exists()


def test_a_broken_known_file_is_ignored(tmp_path: Path, settled: None) -> None:
    data, known = tmp_path / "a.csv", tmp_path / "fingerprints.json"
    data.write_text("x\n1\n")
    known.write_text("{not json")
    assert fingerprint_files([data], remember_in=known) == fingerprint_files([data])
    assert json.loads(known.read_text())  # rewritten whole


# =========================================================================== infer_task


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([True, False, True], "binary"),
        (["yes", "no", None, "yes"], "binary"),
        ([0, 1, 1, 0], "binary"),
        (["a", "b", "c"] * 10, "multiclass"),
        ([1, 2, 3] * 100, "multiclass"),
        (["3", "4", "5"] * 100, "multiclass"),  # CSV strings that read as integers
        (list(range(1000)), "regression"),
        ([float(i % 30) for i in range(3000)], "regression"),  # 30 classes > 20
        ([0.5, 1.5, 2.5] * 100, "regression"),  # not whole numbers
        ([str(i / 7) for i in range(100)], "regression"),
        ([1, 2, 3, 4, 5, 6], "regression"),  # too many distinct for 6 rows
    ],
)
def test_infer_task(values: list[object], task: str) -> None:
    assert infer_task(pl.Series("y", values)) == task


def test_infer_task_degenerate() -> None:
    with pytest.raises(DataError, match="single value"):
        infer_task(pl.Series("y", ["a", "a", None]))
    with pytest.raises(DataError, match="no values"):
        infer_task(pl.Series("y", [None, None], dtype=pl.String))


# =========================================================================== sniffing


def _write_rows(path: Path, rows: list[list[Any]], delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return path


def _review(i: int) -> str:
    # quoted (it holds a comma) and with quoted words inside: csv.Sniffer.has_header re-guessed
    # the separator from this text (a space or "("), found one field per line and said "no header"
    return f'A "great" product (really), would buy again {i}' + " and again" * (i % 40)


@pytest.mark.parametrize("punctuation", ['"great" product', '"stop"(twice)'])
def test_sniff_a_long_text_column_first(tmp_path: Path, punctuation: str) -> None:
    rows: list[list[Any]] = [["review", "id", "score"]]
    rows += [
        [_review(i).replace('"great" product', punctuation), i, f"{i % 10}.5"] for i in range(150)
    ]
    read = sniff_csv(_write_rows(tmp_path / "reviews.csv", rows)).options
    assert (read.separator, read.has_header) == (",", True)
    assert read_source(Source(path=tmp_path / "reviews.csv", read=read)).columns == rows[0]


def test_sniff_ignores_separators_inside_quoted_multiline_text(tmp_path: Path) -> None:
    # every line inside the quoted notes has the same number of "|": csv.Sniffer chose "|"
    notes = [
        "\n".join(f"| step {j} | {i * j} s | ok |" for j in range(1 + i % 4)) for i in range(120)
    ]
    rows: list[list[Any]] = [["notes", "id", "score"]]
    rows += [[n, i, f"{i % 10}.5"] for i, n in enumerate(notes)]
    read = sniff_csv(_write_rows(tmp_path / "notes.csv", rows)).options
    assert (read.separator, read.has_header) == (",", True)


def test_sniff_real_files(shared_data: Path) -> None:
    def sniffed(name: str) -> tuple[str, bool, bool]:
        read = sniff_csv(shared_data / name).options
        return read.separator, read.has_header, read.strip_whitespace

    assert sniffed("adult/adult.data") == (",", False, True)  # ", "-separated, no header
    # a title line ("|1x3 Cross validator") above the table is skipped
    read = sniff_csv(shared_data / "adult" / "adult.test", name_columns=True).options
    assert (read.skip_rows, read.has_header, read.columns) == (
        1,
        False,
        [f"column_{i}" for i in range(1, 16)],
    )
    assert sniffed("kddcup99/kddcup.data_10_percent.gz") == (",", False, False)
    assert sniffed("wine_quality/winequality-red.csv") == (";", True, False)
    assert sniffed("taxis.csv") == (",", True, False)
    assert sniffed("titanic.csv") == (",", True, False)


_WORDS = st.sampled_from(
    ["drift", "model", "(v2)", '"quoted"', "it's", "a;b", "x|y", "tab\there", "1,5", "line\nbreak",
     "42", "-", "é", "#tag", "[1]", "{k}", "a:b", "50%"]
)  # fmt: skip


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sep=st.sampled_from([",", ";", "\t", "|"]),
    texts=st.lists(
        st.lists(_WORDS, min_size=1, max_size=60).map(" ".join), min_size=3, max_size=40
    ),
    numbers=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=40, max_size=40),
    text_first=st.booleans(),
    header=st.booleans(),
)
def test_sniff_property(
    tmp_path: Path, sep: str, texts: list[str], numbers: list[float], text_first: bool, header: bool
) -> None:
    # a numeric column and a free-text column full of punctuation, in either order, with or
    # without a header: the separator and the header are recovered
    body = [
        [t, f"{x:g}"] if text_first else [f"{x:g}", t] for t, x in zip(texts, numbers, strict=False)
    ]
    names = ["comment", "amount"] if text_first else ["amount", "comment"]
    for other in {",", ";", "\t", "|"} - {sep}:
        # every line split alike by another separator (each text holds one ","): ambiguous
        assume(header or len({t.count(other) for t in texts}) > 1 or other not in texts[0])
    path = _write_rows(tmp_path / "p.csv", ([names] if header else []) + body, delimiter=sep)
    read = sniff_csv(path).options
    assert read.separator == sep
    assert read.has_header == header


# =========================================================================== property


_VALUE = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 .-_é日,;|\t\"'\n")), min_size=0, max_size=8
)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[str, list[str], list[list[str]]]:
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    ncols = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.text(alphabet="abcdefgh_ ", min_size=1, max_size=6).filter(lambda s: s.strip() == s),
            min_size=ncols,
            max_size=ncols,
            unique=True,
        )
    )
    rows = draw(st.lists(st.lists(_VALUE, min_size=ncols, max_size=ncols), min_size=1, max_size=15))
    return sep, names, rows


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=_tables())
def test_roundtrip_property(tmp_path: Path, table: tuple[str, list[str], list[list[str]]]) -> None:
    sep, names, rows = table
    # a one-column row holding only spaces is indistinguishable from a blank line (skipped)
    assume(len(names) > 1 or all(row[0] == "" or row[0].strip() for row in rows))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rows)
    path = tmp_path / "prop.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    df = read_source(Source(path=path, read=ReadOptions(separator=sep)))
    assert df.columns == names
    assert df.height == len(rows)
    assert all(dtype == pl.String for dtype in df.dtypes)
    expected = [tuple(value if value != "" else None for value in row) for row in rows]
    assert df.rows() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["", " ", "a", "a_2", "b", "column_2", "a_3"]), max_size=8))
def test_unique_names(names: list[str]) -> None:
    fixed, notes = unique_names(names)
    assert len(fixed) == len(names) and len(set(fixed)) == len(fixed)
    assert all(n.strip() for n in fixed)
    kept = [n == f for n, f in zip(names, fixed, strict=True)]
    assert len(notes) == kept.count(False)
    # a name the header has once, and not empty, is kept
    for n, f in zip(names, fixed, strict=True):
        if n.strip() and names.count(n) == 1:
            assert f == n
