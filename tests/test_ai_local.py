"""The local AI provider: what a user of each of its five functions would check."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time

import pytest
from PIL import Image

from app.ai.base import AIProvider
from app.ai.html import headings, sanitize_html, word_count
from app.ai.local import LocalProvider
from app.ai.registry import PROVIDERS, UnknownProvider, create_provider
from app.ai.schemas import (
    ArticleBrief,
    ClusterBrief,
    ContentBrief,
    IdeaOut,
    KeywordBrief,
    OutlineSection,
)
from app.config import Settings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUNNING = ["best running shoes", "running shoes for women", "trail running shoes"]
SOURDOUGH = ["how to bake sourdough bread", "sourdough starter recipe"]
MIXED = [
    "best running shoes",
    "how to bake sourdough bread",
    "Running Shoes for Women",
    "best coffee grinder",
    "sourdough starter recipe",
    "trail running shoes",
    "burr coffee grinder",
    "coffee grinder for espresso",
    "marathon training plan",
    "half marathon training plan",
    "beginner marathon training",
    "best yoga mat",
    "yoga mat for hot yoga",
    "non slip yoga mat",
    "sourdough bread recipe",
    "cheap running shoes",
    "how to clean a coffee grinder",
    "how to feed a sourdough starter",
    "running shoes for flat feet",
    "WordPress SEO plugin",
]


def briefs(keywords: list[str]) -> list[KeywordBrief]:
    return [KeywordBrief(id=i, keyword=k) for i, k in enumerate(keywords, start=1)]


def content_brief(idea: IdeaOut, **overrides: object) -> ContentBrief:
    fields: dict[str, object] = {
        "title": idea.title,
        "description": idea.description,
        "outline": idea.outline,
        "content_type": idea.content_type,
        "content_structure": idea.content_structure,
        "target_keywords": idea.covered_keywords,
        "target_word_count": idea.target_word_count,
    }
    return ContentBrief.model_validate(fields | overrides)


@pytest.fixture
def provider() -> LocalProvider:
    return LocalProvider()


async def first_idea(provider: LocalProvider) -> IdeaOut:
    cluster = ClusterBrief(name="Running Shoes", description="", keywords=RUNNING)
    return (await provider.generate_ideas(cluster)).output.ideas[0]


class TestClustering:
    async def test_similar_keywords_share_a_cluster_and_unrelated_ones_do_not(
        self, provider: LocalProvider
    ) -> None:
        answer = await provider.cluster_keywords(briefs(RUNNING + SOURDOUGH))

        groups = sorted(sorted(c.keywords) for c in answer.output.clusters)
        assert groups == sorted([sorted(RUNNING), sorted(SOURDOUGH)])
        assert answer.usage is None

    async def test_every_keyword_lands_in_exactly_one_cluster_spelled_as_given(
        self, provider: LocalProvider
    ) -> None:
        clusters = (await provider.cluster_keywords(briefs(MIXED))).output.clusters

        placed = [keyword for cluster in clusters for keyword in cluster.keywords]
        assert sorted(placed) == sorted(MIXED)
        assert 4 <= len(clusters) <= 8
        by_keyword = {k: c.name for c in clusters for k in c.keywords}
        assert by_keyword["Running Shoes for Women"] == by_keyword["cheap running shoes"]
        assert by_keyword["burr coffee grinder"] != by_keyword["best yoga mat"]

    async def test_names_are_distinct_and_descriptions_mention_the_keywords(
        self, provider: LocalProvider
    ) -> None:
        clusters = (await provider.cluster_keywords(briefs(MIXED))).output.clusters

        assert len({c.name.lower() for c in clusters}) == len(clusters)
        for cluster in clusters:
            assert any(keyword in cluster.description for keyword in cluster.keywords)
        running = next(c for c in clusters if "trail running shoes" in c.keywords)
        assert running.name == "Running Shoes"

    async def test_one_keyword_is_one_cluster(self, provider: LocalProvider) -> None:
        clusters = (await provider.cluster_keywords(briefs(["yoga mat"]))).output.clusters

        assert [c.keywords for c in clusters] == [["yoga mat"]]
        assert clusters[0].name == "Yoga Mat"


class TestIdeas:
    @pytest.mark.parametrize(("size", "expected"), [(1, 3), (3, 4), (6, 5), (8, 6), (20, 7)])
    async def test_idea_count_grows_with_the_cluster_from_3_to_7(
        self, provider: LocalProvider, size: int, expected: int
    ) -> None:
        cluster = ClusterBrief(name="Mixed", description="", keywords=MIXED[:size])

        ideas = (await provider.generate_ideas(cluster)).output.ideas

        assert len(ideas) == expected

    async def test_ideas_have_distinct_titles_and_outlines_built_from_the_cluster(
        self, provider: LocalProvider
    ) -> None:
        cluster = ClusterBrief(name="Running Shoes", description="", keywords=MIXED[:6])

        ideas = (await provider.generate_ideas(cluster)).output.ideas

        assert len({idea.title for idea in ideas}) == len(ideas)
        assert len({idea.content_structure for idea in ideas}) >= 3
        for idea in ideas:
            assert idea.primary_keyword in cluster.keywords
            assert idea.primary_keyword in idea.covered_keywords
            assert set(idea.covered_keywords) <= set(cluster.keywords)
            assert len(idea.outline) >= 4
            assert len({section.heading for section in idea.outline}) == len(idea.outline)
            assert all(section.covers for section in idea.outline)
            assert 800 <= idea.target_word_count <= 2000
            assert idea.content_type == "post"


class TestArticle:
    async def test_article_has_one_h2_per_outline_heading_in_order(
        self, provider: LocalProvider
    ) -> None:
        idea = await first_idea(provider)

        article = (await provider.generate_content(content_brief(idea))).output

        assert headings(article.html) == [section.heading for section in idea.outline]
        assert article.html.startswith("<p>")  # the intro comes before the first heading
        assert article.title == idea.title

    @pytest.mark.parametrize("target", [800, 1500, 2000])
    async def test_length_is_within_15_percent_of_the_target(
        self, provider: LocalProvider, target: int
    ) -> None:
        idea = await first_idea(provider)

        article = await provider.generate_content(content_brief(idea, target_word_count=target))

        assert abs(word_count(article.output.html) - target) <= 0.15 * target

    async def test_article_has_a_list_mentions_every_keyword_and_has_short_metas(
        self, provider: LocalProvider
    ) -> None:
        idea = await first_idea(provider)

        article = (await provider.generate_content(content_brief(idea))).output

        assert "<ul>" in article.html or "<ol>" in article.html
        for keyword in idea.covered_keywords:
            assert keyword in article.html.lower()
        assert 0 < len(article.meta_title) <= 60
        assert 0 < len(article.meta_description) <= 160

    async def test_markup_in_the_brief_is_shown_as_text_never_run(
        self, provider: LocalProvider
    ) -> None:
        brief = ContentBrief(
            title="<script>alert(1)</script> Shoes",
            description="",
            outline=[
                OutlineSection(heading="<script>steal()</script> Fit", covers="<b>sizes</b>"),
                OutlineSection(heading="Price", covers="what to pay"),
            ],
            content_type="post",
            content_structure="guide",
            target_keywords=["<img src=x onerror=alert(1)> shoes"],
            target_word_count=600,
        )

        html = (await provider.generate_content(brief)).output.html

        assert "<script" not in html
        assert "<img" not in html
        assert headings(html) == ["<script>steal()</script> Fit", "Price"]  # as text
        assert html == sanitize_html(html)


class TestImagePrompts:
    @pytest.mark.parametrize("count", [0, 2, 7])
    async def test_exactly_the_asked_number_of_prompts_each_from_a_heading(
        self, provider: LocalProvider, count: int
    ) -> None:
        idea = await first_idea(provider)
        article = (await provider.generate_content(content_brief(idea))).output
        sections = [section.heading for section in idea.outline]

        prompts = (
            await provider.generate_image_prompts(
                ArticleBrief(title=article.title, html=article.html), count
            )
        ).output

        assert article.title in prompts.featured
        assert len(prompts.in_article) == count
        for index, prompt in enumerate(prompts.in_article):
            assert prompt.startswith(sections[index % len(sections)])
        assert len(set(prompts.in_article)) == count

    async def test_an_article_without_headings_is_illustrated_from_its_title(
        self, provider: LocalProvider
    ) -> None:
        article = ArticleBrief(title="Yoga Mats", html="<p>Plain text.</p>")

        prompts = (await provider.generate_image_prompts(article, 2)).output

        assert [p.startswith("Yoga Mats") for p in prompts.in_article] == [True, True]


class TestImages:
    @pytest.mark.parametrize(("featured", "size"), [(True, (1200, 630)), (False, (800, 450))])
    async def test_image_is_a_png_of_the_expected_size(
        self, provider: LocalProvider, featured: bool, size: tuple[int, int]
    ) -> None:
        image = (await provider.generate_image("Trail running at dawn", featured=featured)).output

        assert image.media_type == "image/png"
        assert image.data.startswith(PNG_SIGNATURE)
        with Image.open(io.BytesIO(image.data)) as opened:
            opened.load()
            assert (opened.format, opened.size) == ("PNG", size)

    async def test_different_prompts_give_different_images(self, provider: LocalProvider) -> None:
        first = await provider.generate_image("Trail running at dawn", featured=False)
        second = await provider.generate_image("Sourdough on a board", featured=False)

        assert first.output.data != second.output.data


class TestDeterminism:
    async def test_same_input_gives_identical_output_from_any_instance(self) -> None:
        async def everything(provider: LocalProvider) -> list[object]:
            clusters = (await provider.cluster_keywords(briefs(MIXED))).output
            first = clusters.clusters[0]
            cluster = ClusterBrief(name=first.name, description="", keywords=first.keywords)
            ideas = (await provider.generate_ideas(cluster)).output
            article = (await provider.generate_content(content_brief(ideas.ideas[0]))).output
            brief = ArticleBrief(title=article.title, html=article.html)
            prompts = (await provider.generate_image_prompts(brief, 3)).output
            image = (await provider.generate_image(prompts.featured, featured=True)).output
            return [clusters, ideas, article, prompts, image]

        assert await everything(LocalProvider()) == await everything(LocalProvider())


class TestLatency:
    async def test_one_call_takes_at_least_the_latency(self) -> None:
        provider = LocalProvider(latency_ms=100)

        started = time.perf_counter()
        await provider.generate_image("A quiet lake", featured=False)

        assert time.perf_counter() - started >= 0.1

    async def test_concurrent_calls_wait_at_the_same_time(self) -> None:
        provider = LocalProvider(latency_ms=100)
        cluster = ClusterBrief(name="Yoga Mat", description="", keywords=["best yoga mat"])
        article = ArticleBrief(title="Yoga Mats", html="<h2>Grip</h2><p>Text.</p>")
        calls = [
            provider.cluster_keywords(briefs(RUNNING)),
            provider.generate_ideas(cluster),
            provider.generate_image_prompts(article, 1),
            provider.generate_image("A quiet lake", featured=False),
            *(provider.generate_ideas(cluster) for _ in range(4)),
        ]

        started = time.perf_counter()
        await asyncio.gather(*calls)

        assert time.perf_counter() - started < 0.5


class TestRegistry:
    def test_the_default_provider_is_local_with_the_configured_latency(self) -> None:
        provider: AIProvider = create_provider(Settings(local_ai_latency_ms=250))

        assert provider.name == "local"
        assert isinstance(provider, LocalProvider)
        assert provider.latency == 0.25

    def test_an_unknown_provider_name_is_a_clear_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delitem(PROVIDERS, "local")

        with pytest.raises(UnknownProvider, match="unknown AI provider 'local'"):
            create_provider(Settings())

    def test_a_worker_of_another_provider_does_not_load_the_local_ones_libraries(self) -> None:
        """scikit-learn and SciPy hold about 100 MB in each worker process that loads them."""
        probe = (
            "import sys; from app.workers.worker import build_worker; "
            "from app.ai.registry import create_provider; from app.config import Settings; "
            "create_provider(Settings(ai_provider='openai', ai_api_key='sk-x')); "
            "print(sorted({'sklearn', 'scipy', 'numpy'} & sys.modules.keys()))"
        )

        ran = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )

        assert ran.stdout.strip() == "[]"


class TestHtml:
    def test_sanitising_keeps_article_markup_and_drops_anything_that_runs(self) -> None:
        dirty = (
            '<h2 onclick="x()">Fit</h2><p>Size <strong>up</strong></p><script>x()</script>'
            '<ul><li>one</li></ul><a href="javascript:x()">bad</a><a href="https://a.example">ok</a>'
            '<img src="x"><div style="color:red">text</div>'
        )

        clean = sanitize_html(dirty)

        assert clean == (
            '<h2>Fit</h2><p>Size <strong>up</strong></p><ul><li>one</li></ul><a rel="noopener '
            'noreferrer">bad</a><a href="https://a.example" rel="noopener noreferrer">ok</a>text'
        )

    def test_word_count_counts_the_words_a_reader_sees(self) -> None:
        html = "<h2>Two words</h2><p>One <em>long</em>er &amp; more</p><script>not shown</script>"

        assert word_count(html) == 5
