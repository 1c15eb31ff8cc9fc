"""Helpers the local provider's writers share: seeded randomness and phrase casing."""

from __future__ import annotations

import hashlib
import random

# Short words stay lower case inside a title ("Running Shoes for Women").
_MINOR_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "nor", "of", "on"}
    | {"or", "per", "the", "to", "vs", "via", "with"}
)


def seeded_rng(*parts: str) -> random.Random:
    """A generator seeded from the input itself, so equal input gives equal output in every
    process (Python's `hash()` is salted per process, sha256 is not)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - not for security


def title_case(phrase: str) -> str:
    """ "best running shoes for women" -> "Best Running Shoes for Women". Only the first letter of
    a word changes, so "iPhone", "SEO" and "women's" keep their spelling."""
    words = phrase.split()
    return " ".join(
        word if (index and word.lower() in _MINOR_WORDS) else word[:1].upper() + word[1:]
        for index, word in enumerate(words)
    )


def lower_phrase(phrase: str) -> str:
    """A title as it reads inside a sentence: capitalised words lowered, acronyms kept
    ("Choosing the Right SEO Tools" -> "choosing the right SEO tools")."""
    return " ".join(
        word.lower() if word[:1].isupper() and word[1:] == word[1:].lower() else word
        for word in phrase.split()
    )


def capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with an ellipsis if cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    # Trailing punctuation goes too, en and em dashes included.
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.-\u2013\u2014")
    return f"{cut}…"


def join_words(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"
