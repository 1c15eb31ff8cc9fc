"""What an AI operation costs: a snapshot of the editable `CreditCostConfig` table."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.schemas import Usage
from app.models.billing import CreditCostConfig, Operation, Pricing

CENT = Decimal("0.01")
# Tokens held for one call of a token-priced operation, as (fixed, per unit): above what a call
# takes with the service's prompts (the instructions, the input, the answer; a keyword is about
# 25 tokens in and 15 back, a word of an article about 1.4 tokens). The hold is twice that, for
# the repair request a bad answer gets, plus the input's own size where it varies (an article
# read for its image prompts): a call is never charged more than its hold.
HOLD_TOKENS: dict[Operation, tuple[int, int]] = {
    Operation.CLUSTERING: (2_000, 60),  # per keyword
    Operation.IDEA_GENERATION: (8_000, 0),
    Operation.CONTENT_GENERATION: (3_000, 2),  # per word held for
    Operation.IMAGE_PROMPT_EXTRACTION: (4_000, 300),  # per prompt
    Operation.IMAGE_GENERATION: (8_000, 0),
}
REPAIR_FACTOR = 2
CHARS_PER_TOKEN = 3


@dataclass(frozen=True)
class Price:
    operation: Operation
    pricing: Pricing
    unit: str
    unit_size: int
    credits_per_unit: Decimal
    credits_per_1k_tokens: Decimal
    min_credits_per_call: Decimal
    budget_percentage: Decimal

    def for_units(self, units: int | Decimal) -> Decimal:
        """Credits for `units` units (keywords, clusters, words, prompts, images), to the cent
        rounded up: 1 credit per 500 words makes 1,234 words cost 2.47."""
        raw = Decimal(units) * self.credits_per_unit / self.unit_size
        return raw.quantize(CENT, rounding=ROUND_CEILING)

    def for_tokens(self, usage: Usage) -> Decimal:
        raw = Decimal(usage.total_tokens) * self.credits_per_1k_tokens / 1000
        return max(raw.quantize(CENT, rounding=ROUND_CEILING), self.min_credits_per_call)

    def hold(self, units: int | Decimal, *, input_chars: int = 0) -> Decimal:
        """What to reserve before a call that should process `units` (and read an input of
        `input_chars` beyond what `HOLD_TOKENS` allows for): its cost by units, or, where priced
        by tokens, the cost of the most tokens such a call takes."""
        if self.pricing == Pricing.PER_TOKEN:
            fixed, per_unit = HOLD_TOKENS[self.operation]
            one_call = fixed + int(per_unit * units) + input_chars // CHARS_PER_TOKEN
            tokens = REPAIR_FACTOR * one_call
            ceiling = Usage(prompt_tokens=0, completion_tokens=tokens)
            return max(self.for_units(units), self.for_tokens(ceiling))
        return self.for_units(units)

    def cost(self, units: int | Decimal, usage: Usage | None) -> Decimal:
        """The real cost of a call: by tokens where so priced and reported, else by units (and
        a token-priced call the provider reported no tokens for still costs its minimum)."""
        if self.pricing == Pricing.PER_TOKEN:
            if usage is not None:
                return self.for_tokens(usage)
            return max(self.for_units(units), self.min_credits_per_call)
        return self.for_units(units)


Prices = dict[Operation, Price]


async def load_prices(session: AsyncSession) -> Prices:
    """Every active operation's price; an operation with no active row is free."""
    rows = await session.scalars(select(CreditCostConfig).where(CreditCostConfig.is_active))
    prices: Prices = {}
    for row in rows:
        operation = row.operation
        prices[operation] = Price(
            operation=operation,
            pricing=row.pricing,
            unit=row.unit,
            unit_size=row.unit_size,
            credits_per_unit=row.credits_per_unit,
            credits_per_1k_tokens=row.credits_per_1k_tokens,
            min_credits_per_call=row.min_credits_per_call,
            budget_percentage=row.budget_percentage,
        )
    return prices


def price_of(prices: Prices, operation: Operation) -> Price:
    return prices.get(operation) or Price(
        operation=operation,
        pricing=Pricing.PER_UNIT,
        unit="call",
        unit_size=1,
        credits_per_unit=Decimal(0),
        credits_per_1k_tokens=Decimal(0),
        min_credits_per_call=Decimal(0),
        budget_percentage=Decimal(0),
    )
