"""Prices of AI calls: what a call holds before it is made and what it costs after, per unit or
per token (SPEC §8). The hold is the call's most: it must cover what the service's prompts can
take, the repair request included."""

from __future__ import annotations

from decimal import Decimal

from app.ai.schemas import Usage
from app.credits.costs import Price
from app.models.billing import Operation, Pricing


def make_price(operation: Operation, pricing: Pricing, **fields: object) -> Price:
    values: dict[str, object] = {
        "unit": "call",
        "unit_size": 1,
        "credits_per_unit": Decimal(0),
        "credits_per_1k_tokens": Decimal(0),
        "min_credits_per_call": Decimal(0),
        "budget_percentage": Decimal(0),
        **fields,
    }
    return Price(operation=operation, pricing=pricing, **values)  # type: ignore[arg-type]


def per_token(operation: Operation, *, per_1k: str = "1", minimum: str = "0") -> Price:
    return make_price(
        operation,
        Pricing.PER_TOKEN,
        credits_per_1k_tokens=Decimal(per_1k),
        min_credits_per_call=Decimal(minimum),
    )


class TestTokenPricedHolds:
    def test_the_longest_article_with_its_repair_fits_its_hold(self) -> None:
        price = per_token(Operation.CONTENT_GENERATION)
        # A 10,000-word target (the most an idea may ask), held for twice its length; the
        # article answered twice (a repair), each about 1.4 tokens a word, its brief read twice.
        answered_twice = Usage(prompt_tokens=2 * 1_500, completion_tokens=2 * 14_000)
        assert price.hold(2 * 10_000) >= price.cost(20_000, answered_twice)

    def test_a_clustering_hold_grows_with_its_batch(self) -> None:
        price = per_token(Operation.CLUSTERING)
        # 1,000 keywords (the largest batch): about 25 tokens each in, 15 back, twice.
        answered_twice = Usage(prompt_tokens=2 * (1_000 + 25_000), completion_tokens=2 * 15_000)
        assert price.hold(1_000) >= price.cost(1_000, answered_twice)
        assert price.hold(1_000) > price.hold(20)

    def test_an_image_prompt_hold_grows_with_the_article_it_reads(self) -> None:
        price = per_token(Operation.IMAGE_PROMPT_EXTRACTION)
        article = 60_000  # characters of HTML: about 20,000 tokens read, twice with a repair
        answered_twice = Usage(prompt_tokens=2 * 21_000, completion_tokens=2 * 600)
        assert price.hold(3, input_chars=article) >= price.cost(3, answered_twice)
        assert price.hold(3, input_chars=article) > price.hold(3)


class TestTokenPricedCosts:
    def test_a_call_is_charged_by_the_tokens_reported(self) -> None:
        price = per_token(Operation.IDEA_GENERATION, per_1k="0.5")
        assert price.cost(1, Usage(prompt_tokens=1_200, completion_tokens=800)) == Decimal("1.00")

    def test_a_call_reported_without_tokens_still_costs_its_minimum(self) -> None:
        """An image answered as a URL, or a server that leaves usage out, is not free."""
        price = per_token(Operation.IMAGE_GENERATION, minimum="0.75")
        assert price.cost(1, None) == Decimal("0.75")

    def test_the_minimum_applies_to_small_calls(self) -> None:
        price = per_token(Operation.IMAGE_GENERATION, minimum="0.75")
        assert price.cost(1, Usage(prompt_tokens=10, completion_tokens=10)) == Decimal("0.75")


class TestUnitPrices:
    def test_a_unit_priced_hold_is_the_units_cost(self) -> None:
        words = make_price(
            Operation.CONTENT_GENERATION,
            Pricing.PER_UNIT,
            unit="word",
            unit_size=500,
            credits_per_unit=Decimal(1),
        )
        assert words.hold(1_234) == words.cost(1_234, None) == Decimal("2.47")
