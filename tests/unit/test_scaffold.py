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
