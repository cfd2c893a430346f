"""The message helpers of errors.py: short name lists, URLs without their secrets."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.errors import mask_url, name_list, split_credentials

PASSWORD = "p@ss/w:rd#x"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://me:{PASSWORD}@db.example:5432/app", "postgresql://me:***@db.example:5432/app"),
        (f"postgresql+psycopg://me:{PASSWORD}@127.0.0.1/app?sslmode=require",
         "postgresql+psycopg://me:***@127.0.0.1/app?sslmode=require"),
        (f"http://me:{PASSWORD}@mlflow:5000", "http://me:***@mlflow:5000"),
        (f"kafka://me:{PASSWORD}@broker:9092/topic", "kafka://me:***@broker:9092/topic"),
        (f"s3://key:{PASSWORD}@bucket/raw/*.csv", "s3://key:***@bucket/raw/*.csv"),
        ("postgresql://me:p%40ss%2Fw%3Ard%23x@db/app", "postgresql://me:***@db/app"),
        ("postgresql://me@db/app", "postgresql://me@db/app"),  # no password: nothing to hide
        ("sqlite:////tmp/a@b/app.db", "sqlite:////tmp/a@b/app.db"),  # an '@' in a path
        ("s3://bucket/key@2024.csv", "s3://bucket/key@2024.csv"),
        ("https://h/x?user=me&password=hunter2&token=t", "https://h/x?user=me&password=***&token=***"),
        ("data/train.csv", "data/train.csv"),
    ],
)  # fmt: skip
def test_mask_url_hides_the_whole_password_even_with_reserved_characters(
    url: str, shown: str
) -> None:
    assert mask_url(url) == shown


def test_the_password_ends_at_the_last_at_sign() -> None:
    assert split_credentials(f"postgresql://me:{PASSWORD}@db:5432/app") == (
        "postgresql://", "me", PASSWORD, "db:5432/app",
    )  # fmt: skip


_PASSWORD_CHARS = st.text(
    alphabet=string.ascii_letters + string.digits + "@/:#?!$%&*+=~.-_", min_size=4, max_size=30
)


@given(
    user=st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8),
    password=_PASSWORD_CHARS,
    scheme=st.sampled_from(["postgresql", "mysql+pymysql", "http", "https", "kafka", "s3"]),
    path=st.sampled_from(["", "/", "/db", "/topic", "/raw/*.parquet"]),
)
def test_no_character_of_a_password_reaches_the_masked_url(
    user: str, password: str, scheme: str, path: str
) -> None:
    host = "127.0.0.1:5432"
    shown = mask_url(f"{scheme}://{user}:{password}@{host}{path}")
    assert shown == f"{scheme}://{user}:***@{host}{path}"


def test_name_list_is_one_short_line_for_ten_thousand_names() -> None:
    names = [f"column_{i}" for i in range(10_000)]
    text = name_list(names)
    assert len(text) < 200 and "\n" not in text
    assert text.startswith("'column_0', 'column_1'")
    assert text.endswith("... and 9,992 more (10,000 in all)")
    assert name_list(["a", "b c"]) == "'a', 'b c'"
    assert name_list([]) == ""


def test_every_error_message_masks_the_urls_in_it() -> None:
    from modelyard.errors import ConfigError, DataError, Problem

    url = f"http://admin:{PASSWORD}@127.0.0.1:5000"
    err = DataError("cannot reach MLflow", where=url, found=f"ConnectionError: {url}/api")
    assert PASSWORD not in str(err) and "ss/w" not in str(err)
    assert str(err).count("http://admin:***@127.0.0.1:5000") == 2
    config = ConfigError([Problem("modelyard.yaml:3", "tracking.uri", f"bad '{url}'")], source="x")
    assert "rd#x" not in str(config) and "'http://admin:***@127.0.0.1:5000'" in str(config)
