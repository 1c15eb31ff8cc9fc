"""Credit shapes: the run estimate, the balance, the ledger, a site's AI budget allocation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer

from app.models.billing import Operation, TransactionKind
from app.schemas import CreditAmount, InputModel, OutputModel, PlainDecimalText, decimal_schema

# A decimal shown as a JSON number, like CreditAmount, for figures that are not credits.
Number = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
PercentageIn = Annotated[
    Decimal,
    PlainDecimalText,
    Field(ge=0, le=100, decimal_places=2),
    decimal_schema(Decimal(100)),
]


class StageEstimate(OutputModel):
    """One stage's part of the estimate."""

    enabled: bool = Field(description="A disabled stage costs nothing and feeds nothing on.")
    items: int = Field(
        description="Items the stage is expected to process: pending now plus what earlier "
        "stages of the same run feed it, within its per-run limit."
    )
    credits: CreditAmount
    items_low: int = Field(
        description="The low end of the range of `items`: the yields of earlier stages at the "
        "low end (see `estimated_credits_low`). Equals `items` for work already pending."
    )
    items_high: int = Field(description="The high end of the range of `items`.")
    credits_low: CreditAmount = Field(description="The low end of the range of `credits`.")
    credits_high: CreditAmount = Field(description="The high end of the range of `credits`.")


class Projection(OutputModel):
    """Averages of the site's latest completed runs (3 or more), used instead of the reference
    formula's assumptions."""

    completed_runs: int = Field(description="How many completed runs the averages are over.")
    clusters_per_keyword: Number = Field(description="Clusters created per keyword clustered.")
    ideas_per_cluster: Number = Field(description="Ideas created per cluster.")
    credits_per_item: dict[str, Number] = Field(
        description="Credits spent per item processed, by stage (`stage_1` ... `stage_6`); a "
        "stage the runs never did is priced by the reference formula."
    )


class Estimate(OutputModel):
    """What a run of the site would cost now, and whether the balance covers it."""

    estimated_credits: CreditAmount = Field(
        description="The sum of `per_stage` credits, capped at `max_credits_per_run` when one is "
        "set, at the cost table's current prices. How many clusters the pending keywords make "
        "is foreseen by clustering them as stage 1 will (batch by batch, names already used "
        "reused), and each cluster's ideas by its size (3 to 7). Per item: the averages of "
        "`projection` (the site's run history) when present, else an article of 1,250 words "
        "(1 credit per 500 words: 2.50), 0.5 per image prompt and 2 per image for 1 + "
        "`max_in_article_images` images an article. (The reference formula assumes ~5 keywords "
        "per cluster, 5 ideas per cluster and 2,500 words; the pipeline makes more, shorter "
        "articles.)"
    )
    estimated_credits_low: CreditAmount = Field(
        description="The low end of the estimate's range: clusters per keyword and ideas per "
        "cluster 10% under those foreseen; credits per item at the lowest any of the history's "
        "runs had, or, without history, articles 10% shorter (and calls priced by tokens 10% "
        "cheaper). Capped like `estimated_credits`."
    )
    estimated_credits_high: CreditAmount = Field(
        description="The high end of the estimate's range: clusters per keyword and ideas per "
        "cluster 10% over those foreseen; credits per item at the highest any of the history's "
        "runs had, or, without history, articles 10% longer (and calls priced by tokens 10% "
        "dearer). Capped like `estimated_credits`."
    )
    required_with_buffer: CreditAmount = Field(
        description="estimated_credits x 1.2: the balance a run needs to start."
    )
    current_balance: CreditAmount
    sufficient: bool = Field(description="current_balance >= required_with_buffer.")
    basis: Literal["formula", "history"] = Field(
        description="`history` when `projection` was used, else `formula`."
    )
    capped_by_max_credits_per_run: bool
    per_stage: dict[str, StageEstimate] = Field(description="`stage_1` ... `stage_7`.")
    projection: Projection | None = Field(
        description="Present when the site has 3 or more completed runs."
    )


class BalanceOut(OutputModel):
    """The account's credits."""

    account_id: int
    credits: CreditAmount = Field(description="Spendable now (reservations already taken off).")
    reserved: CreditAmount = Field(
        description="Held by reservations of AI calls in flight, not yet settled or released."
    )


class TransactionOut(OutputModel):
    """One movement of the account's credits."""

    id: int
    created_at: datetime
    kind: TransactionKind
    operation: Operation | None
    amount: CreditAmount = Field(description="Positive adds credits, negative takes them.")
    balance_after: CreditAmount
    site_id: int | None
    run_id: str | None = Field(description="The public id of the run that moved the credits.")
    description: str


class AIBudgetOut(OutputModel):
    """How a run's credit cap is shared between the AI functions, in percent (sums to 100)."""

    site_id: int
    use_global_defaults: bool = Field(
        description="true: the percentages are the global defaults of the cost table; false: "
        "the site's own."
    )
    clustering: Number
    idea_generation: Number
    content_generation: Number
    image_prompt_extraction: Number
    image_generation: Number


class AIBudgetIn(InputModel):
    """A site's allocation. With `use_global_defaults` false all five percentages are required
    and must sum to exactly 100; with true, any given must be all five, summing to 100 (kept for
    when the site stops using the defaults)."""

    use_global_defaults: bool
    clustering: PercentageIn | None = None
    idea_generation: PercentageIn | None = None
    content_generation: PercentageIn | None = None
    image_prompt_extraction: PercentageIn | None = None
    image_generation: PercentageIn | None = None

    def percentages(self) -> dict[Operation, Decimal | None]:
        return {operation: getattr(self, operation.value) for operation in Operation}
