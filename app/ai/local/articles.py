"""Articles that follow their brief: an intro, one <h2> per outline section in order (each opened
by what the outline says it covers), lists where the structure calls for them, and about the
target number of words.

Length is steered by a running count: each section ends once the article has reached that
section's share of the target, so the total overshoots by at most about one sentence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from html import escape

from app.ai.html import count_words, sanitize_html
from app.ai.local import phrases
from app.ai.local.text import capitalise, join_words, seeded_rng, shorten, title_case
from app.ai.schemas import ArticleOut, ContentBrief, OutlineSection

META_TITLE_CHARS = 60
META_DESCRIPTION_CHARS = 160
INTRO_SHARE = 0.1
CLOSING_SHARE = 0.05
# Structures whose every section carries a list; the others get one list every third section.
LIST_STRUCTURES = frozenset({"listicle", "how_to", "checklist"})
OPENER_CHANCE = 0.3


def generate_article(brief: ContentBrief) -> ArticleOut:
    keywords = brief.target_keywords or [brief.title]
    outline = brief.outline or [
        OutlineSection(heading=title_case(k), covers=f"what matters most about {k}")
        for k in keywords
    ]
    writer = _Writer(seeded_rng("article", brief.model_dump_json()), keywords, brief.title)
    target = brief.target_word_count
    body_goal = target * (1 - CLOSING_SHARE)
    blocks = writer.intro(outline, goal=target * INTRO_SHARE)
    for index, section in enumerate(outline):
        goal = writer.words + (body_goal - writer.words) / (len(outline) - index)
        blocks += writer.section(
            section,
            goal=goal,
            with_list=_has_list(brief.content_structure, index, len(outline)),
            ordered=brief.content_structure == "how_to",
        )
    blocks += writer.closing(goal=target)
    return ArticleOut(
        title=brief.title,
        html=sanitize_html("\n".join(blocks)),
        meta_title=shorten(brief.title, META_TITLE_CHARS),
        meta_description=shorten(
            f"A practical look at {keywords[0]}, {_span(outline)}.", META_DESCRIPTION_CHARS
        ),
    )


@dataclass
class _Writer:
    """Writes blocks of HTML and counts the words it has written."""

    rng: random.Random
    keywords: list[str]
    title: str
    words: int = 0
    lists: int = 0
    _deck: list[str] = field(default_factory=list)
    _next_keyword: int = 0

    def intro(self, outline: list[OutlineSection], goal: float) -> list[str]:
        primary = self.keywords[0]
        rest = self.rng.choice(phrases.INTRO_OPENINGS)
        first = f"<strong>{escape(capitalise(primary))}</strong> {escape(rest)}"
        self.words += count_words(primary) + count_words(rest)
        sentences = [f"This article goes {_span(outline)}."]
        if len(self.keywords) > 1:
            searched = join_words([f"“{k}”" for k in self.keywords])
            sentences.append(f"It is written for anyone who has searched for {searched}.")
        for sentence in sentences:
            self.words += count_words(sentence)
        sentences += self._sentences_until(goal, self.title)
        return [f"<p>{first} {escape(' '.join(sentences))}</p>"]

    def section(
        self, section: OutlineSection, goal: float, *, with_list: bool, ordered: bool
    ) -> list[str]:
        heading = section.heading
        self.words += count_words(heading)
        blocks = [f"<h2>{escape(heading)}</h2>"]
        lead = self._lead(section.covers)
        extra = self._sentences_until(goal, heading, at_most=self.rng.randint(2, 3))
        blocks.append(_paragraph([lead, *extra]))
        # A short target may leave no room for lists, but every article keeps at least one.
        if with_list and (self.words < goal or not self.lists):
            blocks += self._list(ordered=ordered)
        while self.words < goal:
            size = self.rng.randint(3, 5)
            blocks.append(_paragraph(self._sentences_until(goal, heading, at_most=size)))
        return blocks

    def closing(self, goal: float) -> list[str]:
        keyword = self.keywords[0]
        sentences = [self.rng.choice(phrases.CLOSINGS).format(kw=keyword)]
        self.words += count_words(sentences[0])
        sentences += self._sentences_until(goal, self.title)
        return [_paragraph(sentences)]

    def _lead(self, covers: str) -> str:
        covers = covers.strip().rstrip(".")
        first_word = covers.split(maxsplit=1)[0].lower() if covers else ""
        verb_form = first_word in phrases.SUMMARY_VERBS
        leads = phrases.SECTION_LEADS_VERB if verb_form else phrases.SECTION_LEADS
        covers = covers[:1].lower() + covers[1:] if verb_form else covers
        sentence = self.rng.choice(leads).format(covers=covers)
        self.words += count_words(sentence)
        return sentence

    def _list(self, *, ordered: bool) -> list[str]:
        lead = self.rng.choice(phrases.ORDERED_LIST_LEADS if ordered else phrases.LIST_LEADS)
        items = [
            template.format(kw=self._keyword(template))
            for template in self.rng.sample(phrases.LIST_ITEMS, self.rng.randint(3, 5))
        ]
        self.words += count_words(lead) + sum(count_words(item) for item in items)
        self.lists += 1
        tag = "ol" if ordered else "ul"
        lines = "".join(f"<li>{escape(capitalise(item))}</li>" for item in items)
        return [_paragraph([lead]), f"<{tag}>{lines}</{tag}>"]

    def _sentences_until(self, goal: float, heading: str, at_most: int = 0) -> list[str]:
        """Sentences until the article reaches `goal` words (or `at_most` sentences, if set)."""
        sentences: list[str] = []
        while self.words < goal and not (at_most and len(sentences) >= at_most):
            sentences.append(self._sentence(heading))
        return sentences

    def _sentence(self, heading: str) -> str:
        if not self._deck:
            # A shuffled deck: every sentence is used once before any comes back.
            self._deck = list(phrases.SENTENCES)
            self.rng.shuffle(self._deck)
        template = self._deck.pop()
        sentence = template.format(kw=self._keyword(template), heading=heading)
        if self.rng.random() < OPENER_CHANCE:
            sentence = f"{self.rng.choice(phrases.OPENERS)} {sentence}"
        self.words += count_words(sentence)
        return capitalise(sentence)

    def _keyword(self, template: str) -> str:
        """The target keywords in turn, so each of them is mentioned."""
        if "{kw}" not in template:
            return ""
        keyword = self.keywords[self._next_keyword % len(self.keywords)]
        self._next_keyword += 1
        return keyword


def _has_list(structure: str, index: int, sections: int) -> bool:
    """Every section of a list-shaped article; otherwise the second section and every third
    after it (the only one when there is one), so each article has at least one list."""
    return structure in LIST_STRUCTURES or index % 3 == min(1, sections - 1)


def _span(outline: list[OutlineSection]) -> str:
    """'from “First” to “Last”', or 'through “Only”'."""
    if len(outline) == 1:
        return f"through “{outline[0].heading}”"
    return f"from “{outline[0].heading}” to “{outline[-1].heading}”"


def _paragraph(sentences: list[str]) -> str:
    return f"<p>{escape(' '.join(sentences))}</p>"
