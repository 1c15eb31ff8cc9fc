"""How many clusters and ideas a run will make, foreseen from the site's own pending rows.

Stage 1 cuts clusters at a text distance, not at a count: the keywords decide how many topics
there are. On the benchmark's keyword sets, clusters per keyword at one batch size (20) range
from 0.40 to 1.00, and at 100 from 0.09 to 1.00 (the more keywords of one topic a batch holds,
the fewer clusters; a name met again in a later batch is reused, not created). No constant, nor
one per batch size, comes within 20 % of that, so the estimate does what stage 1 will do: it
clusters the pending keywords by text similarity, in the batches the stage will form (id order,
`stage_1_batch_size` a call, within `max_keywords_per_run`), and counts the clusters whose name
is new to the run and to the site. This is the local provider's clustering (`app.ai.local`), the
one the pipeline runs without an AI account and the OpenAI-compatible test server answers with;
a provider that clusters otherwise is corrected by the site's history (see `estimate.py`).

Ideas per cluster follow the size of each cluster as both providers are asked to (3 to 7, one
more for every two keywords past the first two: `idea_count`), over the foreseen clusters and
the clusters already pending for stage 2.

The work is CPU-bound (about 0.5 s for 1,000 keywords in batches of 20), so it runs in a thread
and its answer is kept for the same pending rows and settings.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.schemas import KeywordBrief, idea_count
from app.models.automation import AutomationConfig
from app.models.planner import Cluster, Keyword
from app.pipeline.pending import pending_condition

# Keywords clustered to foresee stage 1; past this many, their ratio is applied to the rest.
MAX_ANALYSED = 5_000
CACHE_SIZE = 64


@dataclass(frozen=True)
class Yields:
    """What stages 1 and 2 are foreseen to make of the pending rows."""

    keywords: int  # keywords stage 1 will take (within its per-run limit)
    clusters: int  # new clusters they make
    ideas_of_new: int  # ideas stage 2 makes of those
    pending_clusters: int  # clusters already pending for stage 2
    ideas_of_pending: int  # ideas stage 2 makes of those

    @property
    def clusters_per_keyword(self) -> Decimal | None:
        return Decimal(self.clusters) / self.keywords if self.keywords else None

    @property
    def ideas_per_cluster(self) -> Decimal | None:
        clusters = self.clusters + self.pending_clusters
        if not clusters:
            return None
        return Decimal(self.ideas_of_new + self.ideas_of_pending) / clusters

    def foreseen(self) -> dict[str, str | None]:
        """What a run's plan keeps of this foresight, for later runs to learn how far the site's
        provider clusters otherwise (`learned`)."""
        return {
            key: None if value is None else str(value.quantize(FORESEEN_PLACES))
            for key, value in (
                ("clusters_per_keyword", self.clusters_per_keyword),
                ("ideas_per_cluster", self.ideas_per_cluster),
            )
        }


FORESEEN_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Learned:
    """How the site's runs really yielded against what was foreseen for them: the factor to
    apply to a new foresight, None where no run recorded a foresight to compare with."""

    clusters_per_keyword: Decimal | None
    ideas_per_cluster: Decimal | None


def learned(runs: Iterable[tuple[Mapping[str, Any] | None, Mapping[str, Decimal]]]) -> Learned:
    """Sum of what the runs made over the sum of what was foreseen of the same input, from each
    run's recorded foresight (its plan's `foreseen`) and its real counts: `keywords_processed`,
    `clusters_created`, `clusters_processed`, `ideas_created`. The foresight is the local
    provider's clustering; a hosted model clusters its own way, which this corrects for."""
    made = {"clusters": Decimal(0), "ideas": Decimal(0)}
    foreseen = {"clusters": Decimal(0), "ideas": Decimal(0)}
    for recorded, counts in runs:
        cpk = decimal_of((recorded or {}).get("clusters_per_keyword"))
        ipc = decimal_of((recorded or {}).get("ideas_per_cluster"))
        keywords, clusters = counts["keywords_processed"], counts["clusters_processed"]
        if cpk is not None and cpk > 0 and keywords > 0:
            made["clusters"] += counts["clusters_created"]
            foreseen["clusters"] += cpk * keywords
        if ipc is not None and ipc > 0 and clusters > 0:
            made["ideas"] += counts["ideas_created"]
            foreseen["ideas"] += ipc * clusters

    def factor(kind: str) -> Decimal | None:
        if not foreseen[kind]:
            return None
        return (made[kind] / foreseen[kind]).quantize(FORESEEN_PLACES)

    return Learned(clusters_per_keyword=factor("clusters"), ideas_per_cluster=factor("ideas"))


def decimal_of(value: Any) -> Decimal | None:
    """A number kept in JSON (a number or its text) as a finite Decimal; None for anything else."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


_cache: OrderedDict[str, Yields] = OrderedDict()


async def foresee(session: AsyncSession, site_id: int, config: AutomationConfig) -> Yields:
    """Stage 1's clusters and stage 2's ideas for a run of the site started now."""
    limit = config.max_keywords_per_run
    keywords, pending = await _pending_keywords(session, site_id, limit)
    total = min(pending, limit) if limit > 0 else pending
    known: set[str] = set()
    sizes: list[int] = []
    # One read of the site's clusters: the names stage 1 would meet again, and the sizes of
    # those pending for stage 2.
    for name, size, is_pending in await session.execute(
        select(func.lower(Cluster.name), Cluster.keywords_count, pending_condition(2)).where(
            Cluster.site_id == site_id
        )
    ):
        known.add(name)
        if is_pending:
            sizes.append(size)
    key = _key(site_id, config.stage_1_batch_size, keywords, known, sizes)
    cached = _cache.get(key)
    if cached is None:
        cached = await asyncio.to_thread(
            _foresee, keywords, config.stage_1_batch_size, known, sizes
        )
        _cache[key] = cached
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return _extrapolated(cached, total)


async def _pending_keywords(
    session: AsyncSession, site_id: int, limit: int
) -> tuple[list[tuple[int, str]], int]:
    """The first pending keywords stage 1 would take (at most `MAX_ANALYSED`), and how many are
    pending in all, in one statement (the count over the whole selection, before its limit)."""
    taken = min(limit, MAX_ANALYSED) if limit > 0 else MAX_ANALYSED
    rows = (
        await session.execute(
            select(Keyword.id, Keyword.keyword, func.count().over())
            .where(Keyword.site_id == site_id, pending_condition(1))
            .order_by(Keyword.id)
            .limit(taken)
        )
    ).all()
    return [(row[0], row[1]) for row in rows], rows[0][2] if rows else 0


def _extrapolated(analysed: Yields, total: int) -> Yields:
    """The analysed keywords' yield carried over to those past `MAX_ANALYSED`."""
    if total <= analysed.keywords or not analysed.keywords:
        return analysed
    scale = Decimal(total) / analysed.keywords
    return replace(
        analysed,
        keywords=total,
        clusters=int(analysed.clusters * scale),
        ideas_of_new=int(analysed.ideas_of_new * scale),
    )


def prepare_clustering() -> None:
    """Load the clustering's libraries and run it once (about 1.5 s of CPU and 100 MB): in a
    process that serves estimates, at its start, rather than in the first `run_now` or estimate
    it answers."""
    from app.ai.local.clustering import cluster_keywords

    cluster_keywords(
        [KeywordBrief(id=1, keyword="running shoes"), KeywordBrief(id=2, keyword="shoes")]
    )


def _foresee(
    keywords: list[tuple[int, str]], batch_size: int, known: set[str], sizes: list[int]
) -> Yields:
    """Cluster batch by batch as stage 1 does; a name met before (in the site or an earlier
    batch) gathers its keywords into that cluster instead of making one.

    The clustering's libraries (scikit-learn, SciPy: about 100 MB resident) are imported only
    when there are keywords to cluster, so a worker re-planning runs past stage 1 (no keyword
    left pending) does not load them."""
    new: dict[str, int] = {}
    if keywords:
        from app.ai.local.clustering import cluster_keywords
    for start in range(0, len(keywords), batch_size):
        batch = [KeywordBrief(id=i, keyword=k) for i, k in keywords[start : start + batch_size]]
        for cluster in cluster_keywords(batch).clusters:  # pyright: ignore[reportPossiblyUnbound]
            name = cluster.name.strip()[:300].lower()
            if name in known:
                continue
            new[name] = new.get(name, 0) + len(cluster.keywords)
    return Yields(
        keywords=len(keywords),
        clusters=len(new),
        ideas_of_new=sum(idea_count(size) for size in new.values()),
        pending_clusters=len(sizes),
        ideas_of_pending=sum(idea_count(size) for size in sizes),
    )


def _key(
    site_id: int,
    batch_size: int,
    keywords: list[tuple[int, str]],
    known: set[str],
    sizes: list[int],
) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{site_id}:{batch_size}:{sorted(sizes)}".encode())
    for keyword_id, keyword in keywords:
        digest.update(f"{keyword_id}\x00{keyword}\x01".encode())
    for name in sorted(known):
        digest.update(f"{name}\x02".encode())
    return digest.hexdigest()
