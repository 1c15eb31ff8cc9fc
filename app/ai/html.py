"""Article HTML: sanitising what a provider wrote, and reading its text back (words, headings)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

# What an article body needs and nothing that can run code or restyle the host page: no img
# (images are attached by the pipeline), no style, no event attributes.
ALLOWED_TAGS = frozenset(
    {
        "h2",
        "h3",
        "h4",
        "p",
        "br",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "b",
        "i",
        "a",
        "blockquote",
        "code",
        "pre",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"scope"}, "td": {"colspan", "rowspan"}}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

# A word holds at least one letter or digit, so dashes and bullets standing alone do not count.
_WORD = re.compile(r"\S*[^\W_]\S*")
# Text of these elements is never shown to a reader.
_HIDDEN = frozenset({"script", "style", "template"})
# Inline tags ("<strong>x</strong>y") join their text to the neighbours; every other tag
# separates, so "<p>a</p><p>b</p>" is two words.
_INLINE = frozenset({"a", "b", "i", "em", "strong", "code", "span", "small", "sub", "sup", "u"})


def sanitize_html(html: str) -> str:
    """The HTML with only the allowed tags and attributes; scripts and styles go with their
    content, links get rel="noopener noreferrer"."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel="noopener noreferrer",
    )


def count_words(text: str) -> int:
    """Words of plain text."""
    return len(_WORD.findall(text))


def word_count(html: str) -> int:
    """Words a reader sees: the text of the HTML with its tags stripped."""
    return count_words(html_text(html))


def html_text(html: str) -> str:
    """The visible text, whitespace collapsed."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.text).split())


def headings(html: str, tag: str = "h2") -> list[str]:
    """The text of every `tag` element, in document order, whitespace collapsed."""
    parser = _TextParser(collect=tag)
    parser.feed(html)
    parser.close()
    return parser.collected


class _TextParser(HTMLParser):
    def __init__(self, collect: str | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.collected: list[str] = []
        self._collect = collect
        self._current: list[str] | None = None
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._separate(tag)
        if tag in _HIDDEN:
            self._hidden_depth += 1
        elif tag == self._collect:
            self._current = []

    def handle_endtag(self, tag: str) -> None:
        self._separate(tag)
        if tag in _HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag == self._collect and self._current is not None:
            self.collected.append(" ".join("".join(self._current).split()))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        self.text.append(data)
        if self._current is not None:
            self._current.append(data)

    def _separate(self, tag: str) -> None:
        if tag not in _INLINE:
            self.text.append(" ")
            if self._current is not None:
                self._current.append(" ")
