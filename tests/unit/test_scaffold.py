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


def _table(tmp_path: Path) -> Path:
    data = tmp_path / "fish.csv"
    rows = "\n".join(
        f"{i % 17 + 0.5},{i % 11 * 1.5},{['bream', 'pike', 'perch'][i % 3]}" for i in range(600)
    )
    data.write_text("length,weight,species\n" + rows + "\n")
    return data


def test_init_shows_the_model_search_that_will_run(tmp_path: Path) -> None:
    from modelyard.config.loader import load_config
    from modelyard.config.schema import ModelsSection, SplitSection, TuningSection
    from modelyard.modeling.zoo import family

    out = tmp_path / "modelyard.yaml"
    text, task = scaffold(_table(tmp_path), target="species", name=None, out=out)
    assert task == "multiclass"
    installed = [n for n in ModelsSection().candidates if family(n).available()]
    assert f"  # candidates: [{', '.join(installed)}]\n" in text
    assert "auto here: about 30 s (~480 training rows x 2 columns)" in text
    assert "metric: auto                # here: f1_macro; or one of accuracy, log_loss" in text
    assert "# method: auto              # here: stratified" in text
    assert "cv_folds: 5" in text and "  top_k: 2 " in text and "# cv_sample: 20000" in text
    # showing the defaults changes nothing: the search is the default one
    out.write_text(text)
    config = load_config(out)
    assert config.models == ModelsSection()
    assert config.tuning == TuningSection()
    assert config.split == SplitSection()
    assert "candidates" not in config.models.model_fields_set  # a missing extra stays skipped


def test_every_setting_the_template_shows_is_the_schema_default(tmp_path: Path) -> None:
    import re

    from modelyard.config.schema import ModelsSection, SplitSection, TuningSection

    text, _ = scaffold(_table(tmp_path), target=None, name=None, out=tmp_path / "m.yaml")
    assert "here: roc_auc (binary), f1_macro (multiclass), rmse (regression)" in text
    sections = {"models": ModelsSection(), "tuning": TuningSection(), "split": SplitSection()}
    shown = 0
    for name, default in sections.items():
        block = text.split(f"\n{name}:\n", 1)[1].split("\n\n", 1)[0]
        for key, value in re.findall(r"^ {2}#? ?(\w+): (\S+)", block, flags=re.MULTILINE):
            if key in ("candidates", "n_trials"):  # the families installed; an example count
                continue
            assert yaml.safe_load(value) == getattr(default, key), (name, key, value)
            shown += 1
    assert shown >= 10


def test_init_reads_a_windows_export_and_says_its_encoding(tmp_path: Path) -> None:
    data = tmp_path / "clients.csv"
    rows = "".join(f"{i},{city},{i % 2}\n" for i in range(200) for city in ("Zürich", "Besançon"))
    data.write_bytes(("id,city,churn\n" + rows).encode("cp1252"))
    text, task = scaffold(data, target="churn", name=None, out=tmp_path / "modelyard.yaml")
    assert task == "binary"
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert read["encoding"] == "cp1252"
    assert "encoding: cp1252  # guessed" in text
    # a UTF-8 file: the default, not written
    data.write_text("id,city,churn\n" + rows, encoding="utf-8")
    text, _ = scaffold(data, target="churn", name=None, out=tmp_path / "modelyard.yaml")
    assert "encoding" not in yaml.safe_load(text)["data"]["source"]["read"]


def test_init_names_the_columns_a_header_leaves_unnamed_or_repeats(tmp_path: Path) -> None:
    # a trailing separator on every line (an unnamed, empty last column) or a repeated name
    # stopped init ("the header has a column without a name"); pandas names them, so do we,
    # in the yaml where the user sees and edits them
    data = tmp_path / "export.csv"
    rows = "".join(f"{i},{i % 4},{i * 2},{'yes' if i % 3 else 'no'},\n" for i in range(120))
    data.write_text("id,group,group,answer,\n" + rows)
    text, task = scaffold(data, target="answer", name=None, out=tmp_path / "modelyard.yaml")
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert read["columns"] == ["id", "group", "group_2", "answer", "column_5"]
    assert read["has_header"] is True and task == "binary"
    assert "# the header's names; renamed: group (2nd) -> group_2, column 5 -> column_5" in text


def test_init_names_the_columns_of_a_file_without_header(tmp_path: Path) -> None:
    # the first data row became the header (names like "39" and "State-gov", one row lost)
    data = tmp_path / "adult.data"
    rows = "".join(
        f"{20 + i % 50}, {'Private' if i % 2 else 'State-gov'}, {i % 2}\n" for i in range(90)
    )
    data.write_text(rows)
    text, _ = scaffold(data, target="column_3", name=None, out=tmp_path / "modelyard.yaml")
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert read["has_header"] is False
    assert read["columns"] == ["column_1", "column_2", "column_3"]


def test_init_recognises_dates_written_day_or_month_first(tmp_path: Path) -> None:
    # "3/14/2019" was text, then an identifier: the dates left the features unnoticed
    data = tmp_path / "signups.csv"
    rows = "".join(
        f"{i},{i % 12 + 1}/{i % 28 + 1}/2019,{i % 28 + 1}.{i % 12 + 1}.2020 10:{i % 60:02d},{i % 2}\n"
        for i in range(100)
    )
    data.write_text("id,signup,seen,churn\n" + rows)
    text, _ = scaffold(data, target="churn", name=None, out=tmp_path / "modelyard.yaml")
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert read["parse_dates"] == ["signup"] and read["date_format"] == "%m/%d/%Y"
    assert "# guessed: 14 cannot be a month" in text or "cannot be a month" in text
    # day and month both at most 12: no guess
    rows = "".join(f"{i},{i % 12 + 1}/{i % 12 + 1}/2019,{i % 2}\n" for i in range(100))
    data.write_text("id,signup,churn\n" + rows)
    text, _ = scaffold(data, target="churn", name=None, out=tmp_path / "modelyard.yaml")
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert "date_format" not in read and "parse_dates" not in read
    # day first, with a time: the only date column in its format
    rows = "".join(
        f"{i},{i % 28 + 1}.{i % 12 + 1}.2020 10:{i % 60:02d},{i % 2}\n" for i in range(100)
    )
    data.write_text("id,seen,churn\n" + rows)
    text, _ = scaffold(data, target="churn", name=None, out=tmp_path / "modelyard.yaml")
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert read["parse_dates"] == ["seen"] and read["date_format"] == "%d.%m.%Y %H:%M"


def test_init_reads_the_sample_with_the_null_values_it_writes(tmp_path: Path) -> None:
    # the yaml says null_values: ["", "NA", "?"], but init read without them: a 0/1 target
    # with "NA" for missing labels was inferred multiclass (classes 0, 1 and "NA")
    data = tmp_path / "labels.csv"
    rows = "".join(f"{i * 0.1},{['1', '0', 'NA', '?'][i % 4]}\n" for i in range(200))
    data.write_text("x,y\n" + rows)
    text, task = scaffold(data, target="y", name=None, out=tmp_path / "modelyard.yaml")
    assert task == "binary"
    assert yaml.safe_load(text)["data"]["source"]["read"]["null_values"] == ["", "NA", "?"]


def test_init_lists_the_missing_value_tokens_the_file_uses(tmp_path: Path) -> None:
    # "N/A" and Excel's "#N/A" in a numeric column were unreadable values: their rows were
    # quarantined, and above 5% the first run failed
    data = tmp_path / "sales.csv"
    tokens = ["N/A", "#N/A", "null", "NaN"]
    rows = "".join(
        f"{tokens[i % 4] if i % 5 == 0 else i * 1.5},{'a' if i % 2 else 'b'},{i % 2}\n"
        for i in range(200)
    )
    data.write_text("amount,kind,y\n" + rows)
    text, _ = scaffold(data, target="y", name=None, out=tmp_path / "modelyard.yaml")
    read = yaml.safe_load(text)["data"]["source"]["read"]
    assert read["null_values"] == ["", "NA", "?", "#N/A", "N/A", "NaN", "null"]
    out = tmp_path / "modelyard.yaml"
    out.write_text(text)
    from modelyard.config.loader import load_config
    from modelyard.data.sources import read_source

    frame = read_source(load_config(out).data.source)
    assert frame["amount"].null_count() == 40 and frame.height == 200


def test_init_on_an_excel_workbook(tmp_path: Path) -> None:
    import xlsxwriter

    data = tmp_path / "fish.xlsx"
    book = xlsxwriter.Workbook(data)
    sheet = book.add_worksheet("Fish")
    sheet.write_row(0, 0, ["length", "weight", "species"])
    for i in range(120):
        sheet.write_row(i + 1, 0, [i % 17 + 0.5, i % 11 * 1.5, ["bream", "pike", "perch"][i % 3]])
    book.add_worksheet("Notes")
    book.close()
    text, task = scaffold(data, target="species", name=None, out=tmp_path / "modelyard.yaml")
    assert task == "multiclass"
    assert yaml.safe_load(text)["data"]["source"]["read"]["sheet"] == "Fish"
    assert '# the workbook\'s sheets: "Fish", "Notes"' in text
