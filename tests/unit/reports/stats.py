"""Reading the machine-checkable numbers (``data-stat`` / ``data-value``) out of a report page."""

from __future__ import annotations

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
