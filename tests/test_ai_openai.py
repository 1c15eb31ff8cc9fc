"""The `openai` provider against a real OpenAI-compatible HTTP server on 127.0.0.1: valid
answers of the five functions, the repair retry, the SDK's retries on 429 / 5xx / timeouts, and
the errors that fail a run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from app.ai.base import AIError, AIFatalError
from app.ai.openai import OpenAIProvider
from app.ai.openai.structured import strict_schema
from app.ai.registry import create_provider
from app.ai.schemas import (
    ArticleBrief,
    ArticleOut,
    ClusterBrief,
    ContentBrief,
    IdeasOut,
    KeywordBrief,
    OutlineSection,
    Usage,
)
from app.config import Settings
from tests.servers.openai_compatible import OpenAICompatibleServer, Received, Reply

API_KEY = "sk-test-0123456789abcdef"
KEYWORDS = [
    KeywordBrief(id=n, keyword=keyword, volume=100 + n)
    for n, keyword in enumerate(
        [
            "best running shoes",
            "running shoes for beginners",
            "trail running shoes",
            "sourdough bread recipe",
            "sourdough starter",
            "how to bake sourdough bread",
        ],
        start=1,
    )
]
BRIEF = ContentBrief(
    title="How to choose running shoes",
    description="A guide for new runners.",
    outline=[
        OutlineSection(heading="Know your gait", covers="Pronation and how to find yours."),
        OutlineSection(heading="Fit and sizing", covers="Toe room, width, trying shoes late."),
        OutlineSection(heading="Cushioning levels", covers="Max, moderate and minimal."),
    ],
    content_type="guide",
    content_structure="how_to",
    target_keywords=["running shoes for beginners", "best running shoes"],
    target_word_count=1234,
)


@pytest.fixture
async def server() -> AsyncIterator[OpenAICompatibleServer]:
    async with OpenAICompatibleServer() as running:
        yield running


def openai_settings(
    settings: Settings, server: OpenAICompatibleServer, **changes: object
) -> Settings:
    values: dict[str, object] = {
        "ai_provider": "openai",
        "ai_base_url": server.base_url,
        "ai_api_key": SecretStr(API_KEY),
        "ai_text_model": "test-text-model",
        "ai_image_model": "test-image-model",
        "ai_max_retries": 2,
        "ai_timeout_seconds": 5,
        **changes,
    }
    return settings.model_copy(update=values)


@pytest.fixture
async def provider(
    settings: Settings, server: OpenAICompatibleServer
) -> AsyncIterator[OpenAIProvider]:
    opened = OpenAIProvider(openai_settings(settings, server))
    yield opened
    await opened.aclose()


def words(text: object) -> int:
    return len(str(text).split()) if text else 0


def prompt_tokens(request: Received) -> int:
    """The fake server counts a token a word of every message."""
    return sum(words(message.get("content")) for message in request.messages)


class TestValidAnswers:
    async def test_clustering_maps_every_keyword_and_reports_the_tokens(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        answer = await provider.cluster_keywords(KEYWORDS)

        mapped = [k for cluster in answer.output.clusters for k in cluster.keywords]
        assert sorted(mapped) == sorted(k.keyword for k in KEYWORDS)
        [request] = server.requests
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.body["model"] == "test-text-model"
        assert request.body["response_format"]["type"] == "json_schema"
        assert request.body["response_format"]["json_schema"]["name"] == "clustering"
        assert request.body["response_format"]["json_schema"]["strict"] is True
        assert json.loads(request.user_input)["keywords"][0]["keyword"] == "best running shoes"
        assert answer.usage == Usage(
            prompt_tokens=prompt_tokens(request),
            completion_tokens=words(answer.output.model_dump_json()),
        )

    async def test_ideas_come_with_outlines_and_target_lengths(
        self, provider: OpenAIProvider
    ) -> None:
        cluster = ClusterBrief(
            name="Running shoes",
            description="Choosing and buying running shoes.",
            keywords=[k.keyword for k in KEYWORDS[:3]],
        )
        answer = await provider.generate_ideas(cluster)

        assert 3 <= len(answer.output.ideas) <= 7
        assert all(idea.outline and idea.target_word_count >= 100 for idea in answer.output.ideas)
        assert answer.usage is not None
        assert answer.usage.total_tokens > 0

    async def test_the_article_prompt_carries_the_outline_and_the_target_length(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        answer = await provider.generate_content(BRIEF)

        sent = json.loads(server.requests[0].user_input)["brief"]
        assert [s["heading"] for s in sent["outline"]] == [s.heading for s in BRIEF.outline]
        assert sent["outline"][1]["covers"] == "Toe room, width, trying shoes late."
        assert sent["target_word_count"] == 1234
        system = server.requests[0].messages[0]
        assert system["role"] == "system"
        assert "outline" in system["content"]
        assert "target_word_count" in system["content"]
        for section in BRIEF.outline:
            assert f"<h2>{section.heading}</h2>" in answer.output.html
        assert answer.output.meta_title

    async def test_image_prompts_give_one_featured_and_the_asked_in_article_prompts(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        article = ArticleBrief(
            title="How to choose running shoes",
            html="<h2>Know your gait</h2><p>Text.</p><h2>Fit and sizing</h2><p>More.</p>",
        )
        answer = await provider.generate_image_prompts(article, 2)

        assert answer.output.featured
        assert len(answer.output.in_article) == 2
        assert json.loads(server.requests[0].user_input)["in_article_count"] == 2

    async def test_an_image_answered_as_base64_is_a_png_with_its_usage(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        answer = await provider.generate_image("a red running shoe on a track", featured=True)

        assert answer.output.media_type == "image/png"
        assert answer.output.data.startswith(b"\x89PNG")
        [request] = server.requests
        assert request.path == "/v1/images/generations"
        assert request.body["model"] == "test-image-model"
        assert request.body["size"] == "1024x1024"
        assert request.body["n"] == 1
        assert "a red running shoe on a track" in request.body["prompt"]
        assert answer.usage is not None
        assert answer.usage.prompt_tokens == words(request.body["prompt"])
        assert answer.usage.completion_tokens > 0

    async def test_an_image_answered_by_url_is_downloaded_and_has_no_usage(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(Reply(image_url=True))

        answer = await provider.generate_image("a loaf of sourdough bread", featured=False)

        assert answer.output.media_type == "image/png"
        assert answer.output.data.startswith(b"\x89PNG")
        assert answer.usage is None

    async def test_the_registry_builds_it_and_aclose_closes_the_client(
        self, settings: Settings, server: OpenAICompatibleServer
    ) -> None:
        provider = create_provider(openai_settings(settings, server))
        assert isinstance(provider, OpenAIProvider)
        assert provider.name == "openai"
        await provider.aclose()
        assert provider._client.is_closed()
        assert provider._downloads.is_closed


class TestRepair:
    async def test_invalid_json_is_repaired_by_a_second_request_and_usage_is_summed(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        invalid = Reply.invalid_json()
        server.script(invalid)

        answer = await provider.cluster_keywords(KEYWORDS)

        first, second = server.requests
        assert sorted(k for c in answer.output.clusters for k in c.keywords) == sorted(
            k.keyword for k in KEYWORDS
        )
        assert second.messages[:2] == first.messages
        assert second.messages[2] == {"role": "assistant", "content": invalid.content}
        assert "Invalid JSON" in second.messages[3]["content"]
        assert answer.usage == Usage(
            prompt_tokens=prompt_tokens(first) + prompt_tokens(second),
            completion_tokens=words(invalid.content) + words(answer.output.model_dump_json()),
        )

    async def test_an_answer_that_fails_its_schema_is_repaired_with_the_reason(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(Reply(content='{"ideas": []}'))

        answer = await provider.generate_ideas(
            ClusterBrief(name="Bread", description="Baking", keywords=["sourdough starter"])
        )

        assert len(answer.output.ideas) >= 3
        repair = server.requests[1].messages[3]["content"]
        assert "ideas: List should have at least 3 items" in repair

    async def test_invalid_twice_fails_the_call_with_the_tokens_both_used(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(Reply.invalid_json(), Reply.invalid_json())

        with pytest.raises(AIError) as failed:
            await provider.cluster_keywords(KEYWORDS)

        assert not isinstance(failed.value, AIFatalError)
        assert "clustering answer did not fit its schema" in str(failed.value)
        first, second = server.requests
        assert failed.value.usage == Usage(
            prompt_tokens=prompt_tokens(first) + prompt_tokens(second),
            completion_tokens=2 * words(Reply.invalid_json().content),
        )

    async def test_a_clustering_that_names_a_keyword_not_given_is_repaired(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        made_up = {
            "clusters": [
                {
                    "name": "Running",
                    "description": "Shoes for runners.",
                    "keywords": ["best running shoes", "cheap running socks"],
                }
            ]
        }
        server.script(Reply(content=json.dumps(made_up)))

        answer = await provider.cluster_keywords(KEYWORDS)

        repair = server.requests[1].messages[3]["content"]
        assert "keywords that were not given: ['cheap running socks']" in repair
        assert sorted(k for c in answer.output.clusters for k in c.keywords) == sorted(
            k.keyword for k in KEYWORDS
        )

    async def test_a_keyword_answered_in_another_case_or_spacing_is_the_given_one(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        recased = {
            "clusters": [
                {"name": "Shoes", "description": "", "keywords": ["Best  Running Shoes"]},
            ]
        }
        server.script(Reply(content=json.dumps(recased)))

        answer = await provider.cluster_keywords(KEYWORDS)

        assert len(server.requests) == 1, "no repair needed"
        assert answer.output.clusters[0].keywords == ["Best  Running Shoes"]


class TestRetries:
    async def test_a_429_is_retried_after_its_retry_after(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(
            Reply.error(429, "Rate limit reached", type="requests", headers={"Retry-After": "1"})
        )

        answer = await provider.generate_content(BRIEF)

        first, second = server.requests
        assert second.arrived - first.arrived >= 1.0
        assert answer.output.html

    async def test_a_500_is_retried(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(Reply.error(500, "The server had an error", type="server_error"))

        answer = await provider.cluster_keywords(KEYWORDS)

        assert len(server.requests) == 2
        assert answer.output.clusters

    async def test_5xx_until_the_retries_are_spent_fails_the_call(
        self, settings: Settings, server: OpenAICompatibleServer
    ) -> None:
        provider = OpenAIProvider(openai_settings(settings, server, ai_max_retries=1))
        server.script(*[Reply.error(503, "Overloaded", type="server_error")] * 2)
        try:
            with pytest.raises(AIError) as failed:
                await provider.cluster_keywords(KEYWORDS)
        finally:
            await provider.aclose()

        assert not isinstance(failed.value, AIFatalError)
        assert str(failed.value) == "the AI provider answered 503 after 2 attempts: Overloaded"
        assert len(server.requests) == 2

    async def test_a_timeout_is_retried(
        self, settings: Settings, server: OpenAICompatibleServer
    ) -> None:
        provider = OpenAIProvider(openai_settings(settings, server, ai_timeout_seconds=0.5))
        server.script(Reply(delay=3))
        try:
            answer = await provider.cluster_keywords(KEYWORDS)
        finally:
            await provider.aclose()

        first, second = server.requests
        assert second.arrived - first.arrived >= 0.5
        assert answer.output.clusters

    async def test_timeouts_until_the_retries_are_spent_fail_the_call(
        self, settings: Settings, server: OpenAICompatibleServer
    ) -> None:
        slow = openai_settings(settings, server, ai_timeout_seconds=0.3, ai_max_retries=1)
        provider = OpenAIProvider(slow)
        server.script(Reply(delay=3), Reply(delay=3))
        try:
            with pytest.raises(AIError) as failed:
                await provider.generate_image("a shoe", featured=False)
        finally:
            await provider.aclose()

        assert not isinstance(failed.value, AIFatalError)
        assert str(failed.value) == "the AI provider did not answer within 0.3 s (2 attempts)"
        assert len(server.requests) == 2

    async def test_an_unreachable_provider_fails_the_call_without_showing_url_secrets(
        self, settings: Settings
    ) -> None:
        async with OpenAICompatibleServer() as gone:
            url = gone.base_url
        # A proxy's credentials or a key in the query of AI_BASE_URL are secrets too.
        with_secrets = url.replace("http://", "http://proxy-user:proxy-pass@") + "?api-key=k123"
        provider = OpenAIProvider(
            openai_settings(settings, gone, ai_base_url=with_secrets, ai_max_retries=0)
        )
        try:
            with pytest.raises(AIError, match="could not reach the AI provider at") as failed:
                await provider.cluster_keywords(KEYWORDS)
        finally:
            await provider.aclose()
        message = str(failed.value)
        assert url in message
        assert "proxy-pass" not in message
        assert "k123" not in message


class TestFatalErrors:
    async def test_a_rejected_key_fails_for_good_at_once_and_never_shows_the_key(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(
            Reply.error(401, f"Incorrect API key provided: {API_KEY}.", code="invalid_api_key")
        )

        with pytest.raises(AIFatalError) as failed:
            await provider.generate_content(BRIEF)

        assert str(failed.value) == (
            "the AI provider rejected the API key (401): Incorrect API key provided: ***."
        )
        assert failed.value.__cause__ is None
        assert failed.value.__suppress_context__
        assert len(server.requests) == 1, "a rejected key is not retried"

    async def test_an_unknown_model_fails_for_good(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(
            Reply.error(
                404,
                "The model `test-text-model` does not exist",
                code="model_not_found",
            )
        )

        with pytest.raises(AIFatalError) as failed:
            await provider.cluster_keywords(KEYWORDS)

        assert str(failed.value) == (
            "the AI provider does not know the text model 'test-text-model' (404): "
            "The model `test-text-model` does not exist"
        )
        assert len(server.requests) == 1

    async def test_an_account_out_of_quota_fails_for_good(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        """A 429 that no wait will cure: every item would fail the same way."""
        server.always = Reply.error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )

        with pytest.raises(AIFatalError) as failed:
            await provider.generate_content(BRIEF)

        assert str(failed.value).startswith(
            "the AI provider account has no quota left (429): You exceeded your current quota"
        )

    async def test_a_server_without_json_schema_answers_fails_for_good(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(
            Reply.error(
                400,
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                "with this model.",
                param="response_format",
            )
        )

        with pytest.raises(AIFatalError) as failed:
            await provider.generate_ideas(
                ClusterBrief(name="Bread", description="Baking", keywords=["sourdough"])
            )

        assert "cannot answer the text model 'test-text-model' to a JSON schema (400)" in str(
            failed.value
        )
        assert len(server.requests) == 1

    async def test_another_400_fails_only_the_call(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(Reply.error(400, "This model's maximum context length is 8192 tokens."))

        with pytest.raises(AIError) as failed:
            await provider.generate_content(BRIEF)

        assert not isinstance(failed.value, AIFatalError)
        assert str(failed.value) == (
            "the AI provider answered 400: This model's maximum context length is 8192 tokens."
        )

    async def test_a_forbidden_image_model_fails_for_good(
        self, provider: OpenAIProvider, server: OpenAICompatibleServer
    ) -> None:
        server.script(Reply.error(403, "Your organization must be verified"))

        with pytest.raises(AIFatalError, match=r"refused access to the image model .* \(403\)"):
            await provider.generate_image("a shoe", featured=True)


class TestStrictSchema:
    def test_every_property_is_required_and_string_lengths_are_left_to_validation(
        self,
    ) -> None:
        schema = strict_schema(IdeasOut)
        idea = schema["$defs"]["IdeaOut"]
        assert idea["required"] == list(idea["properties"])
        assert idea["additionalProperties"] is False
        assert "maxLength" not in json.dumps(schema)
        assert schema["properties"]["ideas"]["minItems"] == 3
        article = strict_schema(ArticleOut)
        assert article["required"] == ["title", "html", "meta_title", "meta_description"]
        assert article["properties"]["title"] == {"type": "string"}
