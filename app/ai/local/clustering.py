"""Keyword clustering by text similarity: TF-IDF vectors and agglomerative clustering.

Short keywords share few whole words, so each keyword is described by its words (stop words
dropped, so "how to ..." does not glue unrelated topics) and by its character n-grams (so
"shoe" and "shoes" still meet). Clusters are cut at a cosine distance rather than at a count:
the data decides how many topics there are.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix, hstack  # type: ignore[import-untyped]
from sklearn.cluster import AgglomerativeClustering  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
    ENGLISH_STOP_WORDS,
    TfidfVectorizer,
)
from sklearn.metrics.pairwise import cosine_distances  # type: ignore[import-untyped]
from sklearn.preprocessing import normalize  # type: ignore[import-untyped]

from app.ai.local.text import join_words, lower_phrase, shorten, title_case
from app.ai.schemas import ClusteringOut, ClusterOut, KeywordBrief

# Average cosine distance above which two groups are different topics. Tuned on mixed batches
# of short keywords: related ones ("trail running shoes", "running shoes for women") sit
# below 0.6, unrelated ones above 0.95; the result is stable anywhere in 0.75-0.9.
DISTANCE_THRESHOLD = 0.8
# Share of the word features in the combined vector; the rest is character n-grams.
WORD_WEIGHT = 0.6
EXAMPLES_IN_DESCRIPTION = 3
# Keywords may be 500 characters long; a name stays short enough to read (and to validate).
NAME_CHARS = 120

Distances = npt.NDArray[np.float64]


def cluster_keywords(keywords: list[KeywordBrief]) -> ClusteringOut:
    """Every keyword lands in exactly one cluster, spelled as given; clusters come in the
    order of their first keyword in the input."""
    if not keywords:
        return ClusteringOut(clusters=[])
    texts = [k.keyword for k in keywords]
    distances = _distances(texts)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(_labels(distances)):
        groups.setdefault(label, []).append(index)
    used_names: set[str] = set()
    clusters = []
    for members in groups.values():
        name = _unique_name(members, texts, distances, used_names)
        clusters.append(
            ClusterOut(
                name=name,
                description=_description(name, [keywords[i] for i in members]),
                keywords=[texts[i] for i in members],
            )
        )
    return ClusteringOut(clusters=clusters)


def _labels(distances: Distances) -> list[int]:
    if len(distances) == 1:
        return [0]  # the model needs two samples; one keyword is one topic
    model = AgglomerativeClustering(
        n_clusters=None,
        metric="precomputed",
        linkage="average",
        distance_threshold=DISTANCE_THRESHOLD,
    )
    return [int(label) for label in model.fit_predict(distances)]


def _distances(texts: list[str]) -> Distances:
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    parts: list[csr_matrix] = [chars.fit_transform(texts) * math.sqrt(1 - WORD_WEIGHT)]
    words = TfidfVectorizer(
        analyzer="word", ngram_range=(1, 2), stop_words="english", sublinear_tf=True
    )
    # A ValueError means only stop words in every keyword ("how to", "what is"): the
    # characters alone decide then.
    with contextlib.suppress(ValueError):
        parts.append(words.fit_transform(texts) * math.sqrt(WORD_WEIGHT))
    vectors = normalize(hstack(parts).tocsr())
    distances: Distances = cosine_distances(vectors)
    return distances


def _unique_name(members: list[int], texts: list[str], distances: Distances, used: set[str]) -> str:
    """The words the members share ("Running Shoes"), else the most central keyword; a number
    is added in the rare case both are taken by an earlier cluster of the same answer."""
    central = title_case(shorten(texts[_medoid(members, distances)], NAME_CHARS))
    shared = _shared_phrase([texts[i] for i in members])
    candidates = [c for c in (shared, central) if c]
    name = next((c for c in candidates if c.lower() not in used), "")
    suffix = 2
    while not name:
        numbered = f"{central} {suffix}"
        name = numbered if numbered.lower() not in used else ""
        suffix += 1
    used.add(name.lower())
    return name


def _medoid(members: list[int], distances: Distances) -> int:
    """The member closest on average to the others (the first one on a tie)."""
    block = distances[np.ix_(members, members)]
    return members[int(np.argmin(block.sum(axis=1)))]


def _shared_phrase(keywords: list[str]) -> str | None:
    """The longest run of up to three words found in at least half of the keywords (and in two
    or more), neither starting nor ending with a stop word, in the spelling first seen."""
    if len(keywords) < 2:
        return None
    seen_in: Counter[tuple[str, ...]] = Counter()
    spelling: dict[tuple[str, ...], str] = {}
    for keyword in keywords:
        words = keyword.split()
        # A list, not a set: the order of first sight breaks ties, identically in every process.
        grams = dict.fromkeys(
            tuple(words[i : i + n]) for n in (1, 2, 3) for i in range(len(words) - n + 1)
        )
        for gram in grams:
            key = tuple(word.lower() for word in gram)
            if key[0] in ENGLISH_STOP_WORDS or key[-1] in ENGLISH_STOP_WORDS:
                continue
            seen_in[key] += 1
            spelling.setdefault(key, " ".join(gram))
    needed = max(2, math.ceil(len(keywords) / 2))
    shared = [key for key, count in seen_in.items() if count >= needed]
    if not shared:
        return None
    best = max(shared, key=lambda key: (seen_in[key], len(key)))
    return title_case(spelling[best])


def _description(name: str, keywords: list[KeywordBrief]) -> str:
    """Which searches the cluster gathers: a few examples (the most searched first), how many
    more, the combined volume and the usual intent where the input says."""
    ranked = sorted(keywords, key=lambda k: -(k.volume or 0))  # stable: input order on ties
    examples = [f"“{k.keyword}”" for k in ranked[:EXAMPLES_IN_DESCRIPTION]]
    rest = len(keywords) - len(examples)
    if rest:
        examples.append(f"{rest} more")
    if len(keywords) == 1:
        sentences = [f"Searches for {examples[0]}."]
    else:
        about = f"{len(keywords)} keywords about {lower_phrase(name)}"
        sentences = [f"{about}: {join_words(examples)}."]
    volume = sum(k.volume or 0 for k in keywords)
    if volume:
        sentences.append(f"Combined monthly search volume: {volume:,}.")
    intents = Counter(k.intent.lower() for k in keywords if k.intent)
    if intents:
        sentences.append(f"Search intent: mostly {intents.most_common(1)[0][0]}.")
    return " ".join(sentences)
