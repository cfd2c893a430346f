"""Schemathesis hooks of the serving test (``SCHEMATHESIS_HOOKS=<this file>``).

Every JSON body schemathesis generates from the OpenAPI schema is sent as generated, or
mutated with what issue 11 (items 12 and 13) found to break the server:

- a field (known or an arbitrary key) set to arbitrary text: any code point, lone surrogates
  (``"\\ud800"``) included, which the JSON encoder escapes;
- an integer beyond a float (``10**400``), a nested array or object instead of a value;
- the whole body replaced by raw bytes no JSON encoder produces: arrays or objects nested
  thousands deep, an integer of 400 digits, a lone surrogate, invalid UTF-8.

The check stays ``not_a_server_error``: each of these must be a 2xx or a 4xx.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=16)
HUGE_INT = st.integers(min_value=10**309, max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-(10**309)
)
NESTED = st.recursive(
    st.none() | st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=8
) | st.dictionaries(ANY_TEXT, st.lists(st.none(), max_size=2), max_size=2)
HOSTILE_VALUE = ANY_TEXT | HUGE_INT | NESTED
RAW = st.sampled_from(
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b'{"age": 1' + b"0" * 400 + b"}",
        b'{"workclass": "\\ud800"}',
        b'[{"workclass": "\\udfff\\ud800"}]',
        b'{"workclass": "\xff\xfe"}',
        b'{"age": 1e999}',
        b'{"age": NaN}',
    ]
)


def _mutated(body: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from(sorted(body)) | ANY_TEXT if body else ANY_TEXT
    return st.tuples(keys, HOSTILE_VALUE).map(lambda kv: {**body, kv[0]: kv[1]})


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    if isinstance(body, dict):
        mutated: st.SearchStrategy[Any] = _mutated(body)
    elif isinstance(body, list) and body and all(isinstance(r, dict) for r in body):
        mutated = _mutated(body[0]).map(lambda first: [first, *body[1:]])
    else:
        return st.just(body)
    return st.just(body) | mutated | RAW
