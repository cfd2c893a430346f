"""Reading the machine-checkable numbers (``data-stat`` / ``data-value``) out of a report page."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class StatCollector(HTMLParser):
    """Collects the attributes of every element that carries ``data-stat`` and ``data-value``."""

    def __init__(self) -> None:
        super().__init__()
        self.stats: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-stat" in a and "data-value" in a:
            self.stats.append(a)


def collect(html: str) -> list[dict[str, str | None]]:
    parser = StatCollector()
    parser.feed(html)
    return parser.stats


class _ShownText(HTMLParser):
    """The text a browser shows (tooltips in ``<title>`` included), entities decoded once."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);", re.I)
"""An HTML entity: left in the shown text, it was escaped twice."""


def double_escaped(html: str) -> list[str]:
    """Entities a person would see as text, e.g. ``&gt;`` in an axis label."""
    parser = _ShownText()
    parser.feed(html)
    parser.close()
    return ENTITY.findall("".join(parser.parts))
