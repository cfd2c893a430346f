from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from modelyard.config.loader import expand_env, load_config
from modelyard.errors import ConfigError

GOOD = """\
version: 1
name: demo
data:
  source:
    path: data.csv
  target: y
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "data.csv").write_text("a,y\n1,2\n")
    path = tmp_path / "modelyard.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str) -> Any:
    return load_config(write(tmp_path, text), env={})


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), env=env or {})
    return [str(p) for p in err.value.problems]


def test_a_good_file_loads_and_relative_paths_resolve_from_its_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={})
    assert config.data.source.path == (tmp_path / "data.csv").resolve()
    assert config.workdir == (tmp_path / ".modelyard").resolve()
    assert config.seed == 42


def test_typos_get_did_you_mean_with_file_line_and_key(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("  target: y", "  targt: y"))
    assert len(found) == 1
    assert found[0].startswith(
        f"{tmp_path / 'modelyard.yaml'}:6: data.targt: unknown key; did you mean 'target'?"
    )


def test_all_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = """\
    version: 1
    name: "bad name!"
    sed: 1
    data:
      source:
        path: data.csv
        read: {skip_rows: -2, encoding: ebcdic}
      task: classification
    validation:
      on_error: explode
      max_invalid_fraction: 2
    """
    found = problems(tmp_path, text)
    assert len(found) == 7
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)
    joined = "\n".join(found)
    assert "name: String should match pattern" in joined and "found 'bad name!' (str)" in joined
    assert "sed: unknown key; did you mean 'seed'?" in joined
    assert (
        "data.source.read.skip_rows: Input should be greater than or equal to 0; found -2" in joined
    )
    assert "data.source.read.encoding: Input should be 'utf8'" in joined
    assert (
        "data.task: Input should be 'auto', 'binary', 'multiclass' or 'regression'; found 'classification'"
        in joined
    )
    assert "validation.on_error" in joined and "found 'explode'" in joined
    assert (
        "validation.max_invalid_fraction: Input should be less than or equal to 1; found 2"
        in joined
    )


def test_missing_required_keys(tmp_path: Path) -> None:
    found = problems(tmp_path, "version: 1\ndata:\n  source: {}\n")
    joined = "\n".join(found)
    assert "name: this key is required but missing" in joined
    assert "data.source: give exactly one of 'path', 'sql', 'dataset' or 'builtin'" in joined


def test_wrong_format_version_and_moved_keys(tmp_path: Path) -> None:
    text = GOOD.replace("version: 1", "version: 7") + "engine:\n  kind: dask\n"
    text += "tuning:\n  timeout: 60\n"
    found = problems(tmp_path, text)
    joined = "\n".join(found)
    assert "version: this release reads format version 1, found 7 (int)" in joined
    assert "engine: 'engine' was replaced by compute (executor: serial | local | dask)" in joined
    assert "tuning.timeout: 'tuning.timeout' was replaced by models.budget" in joined


@pytest.mark.parametrize(
    ("budget", "seconds"),
    [("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("45", 45.0), ("2.5m", 150.0)],
)
def test_the_budget_reads_durations(tmp_path: Path, budget: str, seconds: float) -> None:
    config = load(tmp_path, GOOD + f"models:\n  budget: {budget}\n")
    assert config.models.budget == seconds


@pytest.mark.parametrize("budget", ["soon", "0s", "-5", "5 parsecs", "true"])
def test_a_bad_budget_says_what_is_expected(tmp_path: Path, budget: str) -> None:
    joined = "\n".join(problems(tmp_path, GOOD + f"models:\n  budget: {budget}\n"))
    assert "models.budget" in joined
    assert "90s, 5m, 1h30m" in joined or "more than 0 seconds" in joined


def test_compute_section_checks_its_values(tmp_path: Path) -> None:
    joined = "\n".join(problems(tmp_path, GOOD + "compute:\n  executor: spark\n  workers: 0\n"))
    assert "compute.executor" in joined and "compute.workers" in joined
    joined = "\n".join(problems(tmp_path, GOOD + "compute:\n  address: tcp://h:8786\n"))
    assert "executor: dask" in joined
    ok = load(tmp_path, GOOD + "compute:\n  executor: dask\n  address: tcp://h:8786\n")
    assert ok.compute.address == "tcp://h:8786" and ok.compute.workers == "auto"


def test_bad_paths_are_reported_before_anything_runs(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("path: data.csv", "path: nowhere/*.csv"))
    assert "data.source.path: no file matches this glob" in found[0]
    (tmp_path / "folder").mkdir()
    found = problems(tmp_path, GOOD.replace("path: data.csv", "path: folder"))
    assert "this is a folder, expected a file" in found[0]
    found = problems(tmp_path, GOOD.replace("path: data.csv", "path: missing.csv"))
    assert "no such file" in found[0] and "missing.csv" in found[0]


def test_a_bad_path_names_an_environment_variable_only_when_it_uses_one(tmp_path: Path) -> None:
    """Issue 11 item 19: the message suggested setting a variable the path did not use."""
    plain = problems(tmp_path, GOOD.replace("path: data.csv", "path: missing.csv"))
    assert "environment variable" not in plain[0]
    assert plain[0].endswith(
        "no such file: " + str(tmp_path / "missing.csv") + ". Fix the path (relative paths "
        "start at the folder of modelyard.yaml)"
    )
    made = problems(
        tmp_path,
        GOOD.replace("path: data.csv", "path: ${DATA_DIR}/${STEM:-train}.csv"),
        env={"DATA_DIR": str(tmp_path / "nowhere")},
    )
    assert "no such file: " + str(tmp_path / "nowhere" / "train.csv") in made[0]
    assert made[0].endswith("or the environment variables it is made from (${DATA_DIR}, ${STEM})")


def test_env_expansion_with_defaults_and_missing_variables(tmp_path: Path) -> None:
    text = GOOD.replace("path: data.csv", "path: ${DATA_DIR:-.}/data.csv").replace(
        "name: demo", "name: ${NAME}"
    )
    config = load_config(write(tmp_path, text), env={"NAME": "from_env"})
    assert config.name == "from_env"
    assert config.data.source.path == (tmp_path / "data.csv").resolve()
    found = problems(tmp_path, text)
    assert "name: environment variable ${NAME} is not set and has no default" in found[0]


@given(st.text(alphabet=st.characters(blacklist_characters="${}"), max_size=30))
def test_text_without_variables_is_unchanged(text: str) -> None:
    assert expand_env(text, {}) == (text, [])


@given(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=20))
def test_set_variables_win_over_defaults(name: str, value: str) -> None:
    assert expand_env(f"${{{name}:-fallback}}", {name: value})[0] == value
    assert expand_env(f"${{{name}:-fallback}}", {})[0] == "fallback"
    assert expand_env("$$" + "{" + name + "}", {name: value})[0] == "${" + name + "}"


def test_broken_yaml_names_line_and_column(tmp_path: Path) -> None:
    found = problems(tmp_path, "version: 1\nname: [unclosed\n")
    assert "this is not valid YAML" in found[0]
    assert ":3:" in found[0] or ":2:" in found[0]


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert "the file is empty" in problems(tmp_path, "")[0]
    assert (
        "expected a mapping of keys to values at the top, found [1, 2]"
        in problems(tmp_path, "[1, 2]\n")[0]
    )


def test_a_missing_config_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="modelyard init DATA_FILE --target COLUMN"):
        load_config(tmp_path / "nope.yaml")


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "modelyard.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_bad_checks_are_explained(tmp_path: Path) -> None:
    text = GOOD + textwrap.dedent(
        """\
        validation:
          checks:
            - {column: a}
            - {column: a, regex: "(unclosed"}
            - {expression: "a > 0", column: a}
        """
    )
    joined = "\n".join(problems(tmp_path, text))
    assert "validation.checks[0]: the check on column 'a' has no rule" in joined
    assert "validation.checks[1]: 'regex' is not a valid regular expression" in joined
    assert "validation.checks[2]: an 'expression' check takes no 'column'" in joined


def test_secret_values_are_redacted_when_shown() -> None:
    class WithSecret(BaseModel):
        password: SecretStr

    shown = WithSecret(password=SecretStr("hunter2")).model_dump(mode="json")
    assert shown["password"] == "**********"
    assert "hunter2" not in repr(WithSecret(password=SecretStr("hunter2")))


def test_defaults_of_omitted_sections_resolve_from_the_yaml_folder_too(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={})
    assert config.contract.path == (tmp_path / "contract.yaml").resolve()
    assert config.output_dir == (tmp_path / "modelyard-out").resolve()


def test_a_date_format_is_checked(tmp_path: Path) -> None:
    ok = "version: 1\nname: p\ndata:\n  source: {path: data.csv, read: {date_format: '%d.%m.%Y %H:%M'}}\n"
    assert load(tmp_path, ok).data.source.read.date_format == "%d.%m.%Y %H:%M"
    for bad, why in (("%Q/%m", "unknown %Q"), ("dd/mm/yyyy", "no %")):
        text = ok.replace("%d.%m.%Y %H:%M", bad)
        (found,) = problems(tmp_path, text)
        assert "data.source.read.date_format: not a strftime format" in found and why in found
