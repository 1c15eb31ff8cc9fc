"""Article ideas for a cluster: one per angle (guide, checklist, comparison, mistakes, FAQ...),
each around one of the cluster's keywords, with an outline of H2 sections.

Titles put the keyword first and the angle after a colon ("Trail Running Shoes: A Practical
Checklist"), which reads well whether the keyword is a noun ("yoga mat") or a question ("how to
bake sourdough bread").
"""

from __future__ import annotations

from dataclasses import dataclass

from app.ai.local.text import join_words, seeded_rng, shorten, title_case
from app.ai.schemas import ClusterBrief, IdeaOut, IdeasOut, OutlineSection, idea_count

MIN_WORDS = 800
MAX_WORDS = 2000
# Ideas stay on their own keyword and the next few, so one idea does not cover the whole cluster.
COVERED_PER_IDEA = 3
# Stands in for a second keyword when the cluster has one keyword only.
NO_OTHER = "related topics"
# Keywords may be 500 characters long; titles and headings quote at most this much of one.
KEYWORD_IN_TITLE = 120


@dataclass(frozen=True)
class Angle:
    name: str
    structure: str
    title: str
    words: int
    sections: tuple[tuple[str, str], ...]
    needs_other: bool = False


# Templates take {kw}/{Kw} (the idea's keyword as given / title-cased) and {other}/{Other}
# (another keyword of the cluster). "covers" are noun phrases: the article writer opens each
# section with "This section looks at <covers>".
ANGLES: tuple[Angle, ...] = (
    Angle("guide", "guide", "{Kw}: The Complete Guide", 1600, (
        ("What {Kw} Really Means", "what {kw} is, why it matters and who it is for"),
        ("Why {Kw} Matters Now", "the benefits of getting {kw} right and the cost of ignoring it"),
        ("Getting Started with {Kw}", "the first steps, the tools you need and a fair timeline"),
        ("What to Know About {Other}", "how {other} relates to {kw} and when it matters"),
        ("Advanced Tips for {Kw}", "the habits that separate good results from great ones"),
        ("Next Steps", "a short recap and where to go from here"),
    )),
    Angle("how_to", "how_to", "{Kw}: A Step-by-Step Plan", 1300, (
        ("Step 1: Set a Clear Goal", "deciding what you want from {kw} and how to measure it"),
        ("Step 2: Gather What You Need", "the tools, information and budget {kw} calls for"),
        ("Step 3: Work Through the Essentials", "the core routine of {kw}, in order"),
        ("Step 4: Check and Adjust", "reviewing results, spotting problems early and fine-tuning"),
        ("Step 5: Make It a Habit", "turning {kw} into a routine that lasts"),
    )),
    Angle("checklist", "listicle", "{Kw}: A Practical Checklist", 1000, (
        ("Before You Begin", "the questions to answer before committing to {kw}"),
        ("The Essentials", "the items no checklist for {kw} should miss"),
        ("Details People Overlook", "the small points around {other} that make a big difference"),
        ("Final Checks", "a last review before you call the job done"),
    )),
    Angle("comparison", "comparison", "{Kw} vs {Other}: A Side-by-Side Comparison", 1300, (
        ("At a Glance", "a quick summary of how {kw} and {other} differ"),
        ("Where {Kw} Wins", "the situations in which {kw} is the better choice"),
        ("Where {Other} Wins", "the situations in which {other} comes out ahead"),
        ("Cost, Time and Effort", "what each option asks of you in money, time and attention"),
        ("Which One Should You Choose?", "a simple way to decide based on your goals"),
    ), needs_other=True),
    Angle("mistakes", "listicle", "{Kw}: Common Mistakes and How to Avoid Them", 1100, (
        ("Why Mistakes Happen", "the habits and assumptions behind most problems with {kw}"),
        ("Mistake 1: Skipping the Basics", "why rushing past the fundamentals of {kw} backfires"),
        ("Mistake 2: Ignoring {Other}", "what goes wrong when {other} is left out of the plan"),
        ("Mistake 3: Expecting Quick Results", "realistic expectations and measuring progress"),
        ("How to Recover", "practical fixes when something has already gone wrong"),
    )),
    Angle("faq", "faq", "{Kw}: Answers to the Most Common Questions", 900, (
        ("Where Should a Beginner Start?", "the first questions people ask about {kw}"),
        ("How Much Time Does It Take?", "a realistic picture of the time {kw} takes"),
        ("What Does It Cost?", "the money involved in {kw}, from the basics to the extras"),
        ("How Do You Know It Is Working?", "the signs of progress worth watching"),
        ("What About {Other}?", "when {other} is worth a look alongside {kw}"),
    )),
    Angle("beginners", "guide", "{Kw}: A Beginner's Introduction", 1000, (
        ("First Things First", "the vocabulary and ideas a newcomer to {kw} needs"),
        ("Your First Week", "a gentle plan for getting started without overwhelm"),
        ("Simple Wins", "quick improvements that build confidence"),
        ("When to Look at {Other}", "the point at which {other} becomes relevant"),
    )),
    Angle("tips", "listicle", "{Kw}: Expert Tips That Make a Difference", 1000, (
        ("Start with the Right Mindset", "the attitude that makes {kw} easier"),
        ("Tips for Better Results", "proven tips for {kw} that anyone can apply"),
        ("Saving Time and Money", "ways to cut the cost and effort of {kw}"),
        ("Going Further with {Other}", "how {other} can take your results further"),
    )),
)  # fmt: skip


def generate_ideas(cluster: ClusterBrief) -> IdeasOut:
    """3 to 7 ideas (more for bigger clusters), the complete guide first, then other angles in an
    order seeded by the cluster, each on the next keyword in turn."""
    keywords = cluster.keywords or [cluster.name]
    rng = seeded_rng("ideas", cluster.name, *keywords)
    first, *others = [a for a in ANGLES if len(keywords) > 1 or not a.needs_other]
    rng.shuffle(others)
    angles = [first, *others][: idea_count(len(keywords))]
    ideas = []
    for index, angle in enumerate(angles):
        primary = keywords[index % len(keywords)]
        other = keywords[(index + 1) % len(keywords)] if len(keywords) > 1 else NO_OTHER
        covered = list(
            dict.fromkeys(keywords[(index + k) % len(keywords)] for k in range(COVERED_PER_IDEA))
        )
        jitter = rng.randrange(-4, 5) * 50
        ideas.append(_idea(angle, primary, other, covered, angle.words + jitter))
    return IdeasOut(ideas=ideas)


def _idea(angle: Angle, primary: str, other: str, covered: list[str], words: int) -> IdeaOut:
    slots = {
        "kw": primary,
        "Kw": title_case(shorten(primary, KEYWORD_IN_TITLE)),
        "other": other,
        "Other": title_case(shorten(other, KEYWORD_IN_TITLE)),
    }
    quoted = [f"“{k}”" for k in covered]
    return IdeaOut(
        title=angle.title.format(**slots),
        description=f"A {angle.name.replace('_', '-')} article for readers searching for "
        f"“{primary}”, covering {join_words(quoted)}.",
        outline=[
            OutlineSection(heading=heading.format(**slots), covers=covers.format(**slots))
            for heading, covers in angle.sections
        ],
        content_type="post",
        content_structure=angle.structure,
        primary_keyword=primary,
        covered_keywords=covered,
        target_word_count=min(MAX_WORDS, max(MIN_WORDS, words)),
    )
