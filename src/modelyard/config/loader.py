"""Load ``modelyard.yaml``: YAML with line numbers, ``${VAR}`` expansion, schema checks.

All problems are collected and reported at once, each with the file and line, the key path,
what was expected and what was found.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from modelyard.config.schema import MOVED, NOT_YET_SUPPORTED, ProjectConfig, is_url
from modelyard.errors import ConfigError, Problem

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Lines = dict[tuple[str | int, ...], int]


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in ``text``; ``$$`` is a literal ``$``.

    Returns the expanded text and the names of variables that are unset and have no default.

    >>> expand_env("s3://${BUCKET:-raw}/x", {})
    ('s3://raw/x', [])
    >>> expand_env("${HOME}", {"HOME": "/root"})
    ('/root', [])
    """
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return match.group(0)

    return _ENV.sub(sub, text), missing


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _compose(text: str, source: str) -> tuple[Any, Lines]:
    """Parse YAML into plain Python values plus a map of key path -> line number."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            [Problem(where, "", f"this is not valid YAML ({problem})")], source=source
        ) from None
    lines: Lines = {}
    if node is None:
        return None, lines

    def walk(n: yaml.Node, path: tuple[str | int, ...]) -> None:
        lines[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = key_node.value
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    walk(node, ())
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
        raise ConfigError([Problem(source, "", str(exc))], source=source) from None
    return data, lines


def _expand_tree(
    value: Any,
    env: Mapping[str, str],
    path: tuple[str | int, ...],
    missing: list[tuple[tuple[str | int, ...], str]],
    used: dict[tuple[str | int, ...], list[str]] | None = None,
) -> Any:
    """Expand every string of ``value``; unset variables go to ``missing`` and, per key path,
    the variables a value names go to ``used`` (so a message can name them)."""
    if isinstance(value, str):
        expanded, unset = expand_env(value, env)
        missing.extend((path, name) for name in unset)
        if used is not None:
            names = [m.group(1) for m in _ENV.finditer(value) if m.group(1)]
            if names:
                used[path] = names
        return expanded
    if isinstance(value, dict):
        return {k: _expand_tree(v, env, (*path, k), missing, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_tree(v, env, (*path, i), missing, used) for i, v in enumerate(value)]
    return value


def _line_of(lines: Lines, path: tuple[str | int, ...]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _model_at(model: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model class that holds the key at ``path`` (for did-you-mean)."""
    import typing

    current: Any = model
    for part in path[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return None
        ann = field.annotation
        # unwrap Optional[...] / list[...] / dict[str, ...]
        for _ in range(3):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                break
            if args:
                ann = args[-1]
        current = ann
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})" if value is not None else "nothing (null)"


def _problem_from_error(
    err: Mapping[str, Any], source: str, lines: Lines, model: type[BaseModel]
) -> Problem:
    path = tuple(err["loc"])
    # pydantic inserts the tag of unions / function validators in loc; keep data keys only
    where = f"{source}:{_line_of(lines, path)}" if _line_of(lines, path) else source
    key = _dotted(path)
    kind = err["type"]
    found = err.get("input")
    if kind == "extra_forbidden":
        holder = _model_at(model, path)
        names: list[str] = []
        if holder is not None:
            for name, f in holder.model_fields.items():
                names.append(f.alias or name)
        guess = difflib.get_close_matches(str(path[-1]), names, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        allowed = f" Allowed keys here: {', '.join(sorted(names))}." if names else ""
        return Problem(where, key, f"unknown key{hint}{allowed}")
    if kind == "missing":
        return Problem(where, key, "this key is required but missing")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if isinstance(found, dict | list):  # a whole section: the message says what is wrong
        return Problem(where, key, msg)
    return Problem(where, key, f"{msg}; found {_describe(found)}")


def load_config(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> ProjectConfig:
    """Read, expand and check a modelyard.yaml; raise :class:`ConfigError` listing every problem."""
    file = Path(path)
    source = str(path)
    if file.is_dir():
        file = file / "modelyard.yaml"
        source = str(file)
    if not file.exists():
        raise ConfigError(
            [
                Problem(
                    source,
                    "",
                    "no such file. Create one with `modelyard init DATA_FILE --target COLUMN`, "
                    "or pass the right path with -c/--config",
                )
            ],
            source=source,
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                Problem(
                    source, "", f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8"
                )
            ],
            source=source,
        ) from None
    except OSError as exc:
        raise ConfigError(
            [Problem(source, "", f"cannot read the file: {exc.strerror}")], source=source
        ) from None
    return parse_config(text, source=source, base_dir=file.resolve().parent, env=env)


def parse_config(
    text: str, *, source: str, base_dir: Path, env: Mapping[str, str] | None = None
) -> ProjectConfig:
    """Check the text of a modelyard.yaml; relative paths resolve from ``base_dir``."""
    data, lines = _compose(text, source)
    if data is None:
        raise ConfigError(
            [
                Problem(
                    source,
                    "",
                    "the file is empty; expected a mapping with at least 'version', 'name' and 'data'",
                )
            ],
            source=source,
        )
    if not isinstance(data, dict):
        raise ConfigError(
            [
                Problem(
                    f"{source}:1",
                    "",
                    f"expected a mapping of keys to values at the top, found {_describe(data)}",
                )
            ],
            source=source,
        )
    problems: list[Problem] = []
    missing: list[tuple[tuple[str | int, ...], str]] = []
    used: dict[tuple[str | int, ...], list[str]] = {}
    data = _expand_tree(data, os.environ if env is None else env, (), missing, used)
    for path, name in missing:
        problems.append(
            Problem(
                f"{source}:{_line_of(lines, path)}",
                _dotted(path),
                f"environment variable ${{{name}}} is not set and has no default; "
                f"set it, or write ${{{name}:-default}}",
            )
        )
    version = data.get("version")
    if version is not None and version != 1:
        problems.append(
            Problem(
                f"{source}:{_line_of(lines, ('version',))}",
                "version",
                f"this release reads format version 1, found {_describe(version)}; "
                "upgrade modelyard or convert the file",
            )
        )
        data.pop("version")
        data["version"] = 1
    for key in list(data):
        if key in NOT_YET_SUPPORTED:
            problems.append(
                Problem(
                    f"{source}:{_line_of(lines, (key,))}",
                    str(key),
                    f"the '{key}' section ({NOT_YET_SUPPORTED[key]}) is not yet supported "
                    "by this release of modelyard; remove it for now",
                )
            )
            del data[key]
    for dotted, replacement in MOVED.items():
        *parents, leaf = dotted.split(".")
        holder: Any = data
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and leaf in holder:
            problems.append(
                Problem(
                    f"{source}:{_line_of(lines, tuple(dotted.split('.')))}",
                    dotted,
                    f"'{dotted}' was replaced by {replacement}; move the setting there",
                )
            )
            del holder[leaf]
    try:
        config = ProjectConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(_problem_from_error(err, source, lines, ProjectConfig))
        raise ConfigError(_sorted(problems), source=source) from None
    problems.extend(_check_files(config, source, lines, used))
    if problems:
        raise ConfigError(_sorted(problems), source=source)
    return config


def _sorted(problems: list[Problem]) -> list[Problem]:
    def line(p: Problem) -> int:
        _, _, tail = p.location.rpartition(":")
        return int(tail) if tail.isdigit() else 0

    return sorted(problems, key=line)


def _check_files(
    config: ProjectConfig,
    source: str,
    lines: Lines,
    used: Mapping[tuple[str | int, ...], list[str]],
) -> list[Problem]:
    """Input files that do not exist are reported with the other problems, before any run.

    The message names the environment variables the path was made from, when it was (and
    only then): ``${DATA_DIR}/train.csv`` may be wrong because of ``DATA_DIR``.
    """
    found: list[Problem] = []
    entries: list[tuple[tuple[str | int, ...], Path | str | None]] = [
        (("data", "source", "path"), config.data.source.path),
        (("data", "test", "path"), config.data.test.path if config.data.test else None),
    ]
    for key, location in entries:
        # URLs (object stores) are checked when read; SQL and dataset sources have no path
        if location is None or is_url(location) or "://" in str(location):
            continue
        path = Path(location)
        text = str(path)
        if any(ch in text for ch in "*?["):
            anchor = Path(
                text.split("*", maxsplit=1)[0].split("?", maxsplit=1)[0].split("[", maxsplit=1)[0]
            )
            root = anchor if anchor.is_dir() else anchor.parent
            pattern = str(Path(text).relative_to(root)) if Path(text).is_relative_to(root) else text
            if root.is_dir() and any(root.glob(pattern)):
                continue
            what = "no file matches this glob"
        elif path.is_file():
            continue
        elif path.is_dir():
            what = "this is a folder, expected a file (use a glob like 'folder/*.csv')"
        else:
            what = "no such file"
        names = used.get(key, [])
        fix = "Fix the path (relative paths start at the folder of modelyard.yaml)"
        if names:
            variables = ", ".join(f"${{{n}}}" for n in dict.fromkeys(names))
            fix += f" or the environment variable{'s' if len(set(names)) > 1 else ''} "
            fix += f"it is made from ({variables})"
        found.append(
            Problem(f"{source}:{_line_of(lines, key)}", _dotted(key), f"{what}: {text}. {fix}")
        )
    return found
