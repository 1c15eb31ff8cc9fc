"""Prometheus metrics of the engine (SPEC §11): runs by status, stage durations, AI calls'
latency and errors, credits charged. Served by `/metrics` of the process that records them
(`automation serve` runs API and worker in one process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RUN_TRANSITIONS = Counter("automation_run_transitions_total", "Runs entering a status", ["status"])
STAGE_SECONDS = Histogram(
    "automation_stage_duration_seconds",
    "Time a stage took from its start to its completion",
    ["stage"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600),
)
AI_CALL_SECONDS = Histogram(
    "automation_ai_call_duration_seconds", "AI provider call latency", ["operation"]
)
AI_GATE_WAIT_SECONDS = Histogram(
    "automation_ai_gate_wait_seconds",
    "Time a call waited for the provider-wide cap (AI_MAX_CONCURRENCY)",
    ["provider"],
    buckets=(0.005, 0.05, 0.25, 1, 5, 15, 60, 300),
)
AI_CALL_ERRORS = Counter(
    "automation_ai_call_errors_total", "AI provider calls that failed", ["operation", "kind"]
)
AI_TOKENS = Counter(
    "automation_ai_tokens_total",
    "Tokens the AI provider reported using (where it reports them)",
    ["operation", "kind"],
)
CREDITS_CHARGED = Counter(
    "automation_credits_charged_total", "Credits settled for AI calls", ["operation"]
)
CHARGES_OVER_HOLD = Counter(
    "automation_charges_over_hold_total",
    "AI calls that cost more than their hold: the difference settled from the balance "
    "(settled), or only as far as the balance allowed (capped)",
    ["operation", "outcome"],
)
CREDITS_UNCHARGED = Counter(
    "automation_credits_uncharged_total",
    "Credits of capped charges the balance could not cover",
    ["operation"],
)
PUBLICATIONS = Counter(
    "automation_publications_total",
    "Publications of content, by publisher kind and outcome (published, failed)",
    ["kind", "outcome"],
)
