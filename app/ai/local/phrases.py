"""The sentences the local article writer draws from. Each is a complete sentence that stands on
its own, written in lower case so an opener ("In practice, ...") can precede it. Slots: {kw}, a
target keyword as given; {heading}, the section's heading, quoted as a label because headings
come in every grammatical shape ("Step 1: Set a Clear Goal", "What Does It Cost?")."""

from __future__ import annotations

SENTENCES: tuple[str, ...] = (
    "when it comes to {kw}, the details in this part make more difference than most people expect.",
    "the advice here boils down to one idea: start small and build from there.",
    "most readers who look into {kw} want a clear answer first and the nuance second.",
    "it helps to write down what you expect from {kw} before you compare options.",
    "small, consistent steps usually beat one big change, and {kw} is no exception.",
    "if something here feels unclear, come back to it after a first attempt.",
    "the people who get the most out of {kw} treat it as a process rather than a one-off task.",
    "budget, time and personal preference all shape the right answer here.",
    "there is rarely a single correct choice, but there are plenty of avoidable ones.",
    "this part is worth a few extra minutes of attention, because it affects what follows.",
    "experienced practitioners often say that {kw} rewards patience more than talent.",
    "a quick test on a small scale will tell you more than hours of reading.",
    "keep notes as you go: what worked, what did not and what you would change next time.",
    "the most common trap is copying someone else's approach without checking that it fits.",
    "honest reviews, reliable sources and your own experience are the best guides to {kw}.",
    "it is worth revisiting your choices every few months, because needs change.",
    "the gap between an average result and a great one usually comes down to preparation.",
    "with {kw}, quality matters more than quantity.",
    "a simple checklist keeps all of this manageable, even on a busy day.",
    "asking people who have done it before saves a surprising amount of time.",
    "none of this requires special talent, only a little planning.",
    "the numbers matter, but so does how the result feels in everyday use.",
    "if you remember one thing from “{heading}”, make it this: clarity first, details second.",
    "many questions about {kw} have simple answers once the basics are in place.",
    "there is no need to get everything perfect on the first try.",
    "comparing two or three options before settling on one is time well spent.",
    "a realistic plan is one you can still follow on your worst week, not just your best.",
    "anyone new to {kw} should expect a short learning curve, and that is perfectly normal.",
    "the right choice for a beginner is not always the right choice for an expert.",
    "small warning signs often point to bigger issues, so they are worth noticing early.",
    "whatever you decide here, note why, so you can check the reasoning later.",
    "trends come and go, but the fundamentals of {kw} have stayed remarkably stable.",
    "a second opinion is cheap insurance against an expensive mistake.",
    "progress with {kw} is rarely a straight line, so judge it over weeks rather than days.",
    "the best setup is the one you will actually use, not the one that looks best on paper.",
    "seasoned readers will recognise most of this, but the order in which you do it matters.",
)

OPENERS: tuple[str, ...] = (
    "In practice,",
    "For most people,",
    "As a rule,",
    "On top of that,",
    "Just as important,",
    "In our experience,",
    "That said,",
    "Over time,",
    "Put simply,",
    "Of course,",
)

# How a section starts, followed by what its outline entry says it covers.
SECTION_LEADS: tuple[str, ...] = (
    "This section looks at {covers}.",
    "Here the focus is on {covers}.",
    "Next comes {covers}.",
    "This part of the article deals with {covers}.",
)
# The same, for a "covers" that is already a sentence about the section ("Explains how ...").
SECTION_LEADS_VERB: tuple[str, ...] = (
    "This section {covers}.",
    "This part of the article {covers}.",
)
# First words of a "covers" written as a sentence rather than a noun phrase.
SUMMARY_VERBS = frozenset(
    {
        "answers",
        "compares",
        "covers",
        "defines",
        "describes",
        "discusses",
        "explains",
        "gives",
        "helps",
        "introduces",
        "lists",
        "outlines",
        "presents",
        "reviews",
        "shows",
        "summarises",
        "summarizes",
        "walks",
    }
)

LIST_LEADS: tuple[str, ...] = (
    "A few points to keep in mind:",
    "The essentials, at a glance:",
    "Before moving on, check these:",
)
ORDERED_LIST_LEADS: tuple[str, ...] = (
    "The steps, in order:",
    "Work through these one at a time:",
)
LIST_ITEMS: tuple[str, ...] = (
    "Set a clear goal for {kw}.",
    "Compare at least two options side by side.",
    "Read reviews from people whose needs match yours.",
    "Start small and scale up once it works.",
    "Keep a short record of what you try.",
    "Review the results after a week or two.",
    "Ask someone experienced to look over your plan.",
    "Leave room in the budget for surprises.",
    "Revisit your choices whenever your needs change.",
    "Focus on the basics before the extras.",
    "Decide in advance how you will measure success.",
    "Drop what does not help, even if it is popular.",
)

# What follows the article's main keyword in its first sentence.
INTRO_OPENINGS: tuple[str, ...] = (
    "raises more questions than it first seems to.",
    "is one of those subjects where good advice is easy to find and hard to sort.",
    "comes up again and again, and for good reason.",
)

CLOSINGS: tuple[str, ...] = (
    "To sum up, {kw} comes down to a handful of sound decisions made in the right order.",
    "Take the points above one at a time and {kw} quickly becomes less daunting.",
    "The best next step is a small one: pick one idea from this article and try it this week.",
    "Whatever your starting point, steady attention to the basics will carry you a long way.",
)
