"""The arithmetic of a run's progress plan (app.runs.plan), on runs held in memory: a stage that
handles more than planned raises the total with its items, one that ends with fewer lets it fall,
a re-plan that raises it keeps the percentage at its floor; the ETA and the credits left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from app.models.automation import AutomationRun, RunStatus
from app.runs.plan import ProgressPlan, StagePlan, figures, percentage, snapshot_plan

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def plan(
    *items: int,
    floor: int = 0,
    paces: dict[int, float] | None = None,
    credits: dict[int, str] | None = None,
    delay: int = 0,
) -> ProgressPlan:
    paces, credits = paces or {}, credits or {}
    return ProgressPlan(
        basis="formula",
        stages=tuple(
            StagePlan(
                items=n,
                credits=Decimal(credits.get(stage, "0")),
                seconds_per_item=paces.get(stage),
            )
            for stage, n in enumerate(items, start=1)
        ),
        floor=floor,
        between_stage_delay=delay,
    )


def ended(**counters: Any) -> dict[str, Any]:
    return {
        "started_at": (NOW - timedelta(minutes=5)).isoformat(),
        "completed_at": (NOW - timedelta(minutes=1)).isoformat(),
        "partial": False,
        "skipped": False,
        **counters,
    }


def started(seconds_ago: float, **counters: Any) -> dict[str, Any]:
    return {
        "started_at": (NOW - timedelta(seconds=seconds_ago)).isoformat(),
        "completed_at": None,
        "partial": False,
        "skipped": False,
        **counters,
    }


def run(
    stage: int, status: RunStatus = RunStatus.RUNNING, **results: dict[str, Any]
) -> AutomationRun:
    return AutomationRun(
        status=status,
        current_stage=stage,
        started_at=NOW - timedelta(hours=1),
        **results,
    )


class TestTheTotal:
    def test_is_the_plan_before_anything_is_done(self) -> None:
        state = figures(run(1), plan(20, 4, 20, 20, 20, 60, 20), NOW)

        assert [s.input_count for s in state.stages] == [20, 4, 20, 20, 20, 60, 20]
        assert (state.total_items, state.completed_items, state.percentage) == (164, 0, 0)

    def test_a_stage_handling_more_than_planned_raises_it_with_its_items(self) -> None:
        planned = plan(10, 2, 10, 10, 10, 30, 10)
        before = figures(run(1, stage_1_result=started(5, keywords_processed=9)), planned, NOW)

        after = figures(
            run(1, stage_1_result=started(5, keywords_processed=12, errors=2)), planned, NOW
        )

        assert after.stages[0].input_count == 14
        assert after.total_items == before.total_items + 4
        assert after.completed_items == 14
        assert after.percentage >= before.percentage

    def test_a_stage_that_ended_with_fewer_lets_it_fall_and_the_percentage_jump(self) -> None:
        planned = plan(10, 10, 10, 0, 0, 0, 0)
        in_stage = run(
            2,
            stage_1_result=ended(keywords_processed=10),
            stage_2_result=started(9, clusters_processed=6),
        )
        running = figures(in_stage, planned, NOW)

        over = run(
            3,
            stage_1_result=ended(keywords_processed=10),
            stage_2_result=ended(clusters_processed=6),
        )
        done = figures(over, planned, NOW)

        assert running.stages[1].input_count == 10
        assert done.stages[1].input_count == 6
        assert done.total_items == running.total_items - 4
        assert (running.percentage, done.percentage) == (53, 61)

    def test_an_ended_stage_counts_what_it_handled_failures_included(self) -> None:
        over = run(
            5,
            stage_4_result=ended(tasks_processed=7, errors=2),
            stage_5_result=started(1),
        )

        state = figures(over, plan(0, 0, 0, 20, 9, 27, 9), NOW)

        four = state.stages[3]
        assert (four.input_count, four.processed_count, four.handled) == (9, 7, 9)

    def test_a_failed_image_counts_once(self) -> None:
        over = run(
            7,
            stage_6_result=ended(images_processed=6, images_failed=2, errors=2),
            stage_7_result=started(1),
        )

        state = figures(over, plan(0, 0, 0, 0, 0, 6, 2), NOW)

        assert (state.stages[5].input_count, state.stages[5].handled) == (6, 6)


class TestThePercentage:
    def test_rounds_down_so_100_means_every_item_handled(self) -> None:
        assert percentage(RunStatus.RUNNING, 0, 199, 200) == 99
        assert percentage(RunStatus.RUNNING, 0, 200, 200) == 100

    def test_never_goes_below_the_floor_a_replan_stored(self) -> None:
        """Stage 1 made 23 clusters where 8 were planned: the re-plan raises the later stages
        and keeps the percentage the run had."""
        stage_1 = ended(keywords_processed=40)
        old = plan(40, 8, 40, 40, 40, 120, 40)
        at_the_end_of_stage_1 = figures(run(2, stage_1_result=stage_1), old, NOW).percentage
        raised = plan(40, 23, 115, 115, 115, 345, 115, floor=at_the_end_of_stage_1)

        replanned = figures(run(2, stage_1_result=stage_1), raised, NOW)
        later = figures(
            run(2, stage_1_result=stage_1, stage_2_result=started(9, clusters_processed=20)),
            raised,
            NOW,
        )

        assert at_the_end_of_stage_1 == 12
        assert replanned.completed_items * 100 // replanned.total_items == 4
        assert replanned.percentage == 12
        assert later.percentage == 12  # 60 of 868: held until the items catch up
        assert replanned.total_items == 868

    def test_a_completed_run_is_100_with_every_stage_at_what_it_handled(self) -> None:
        """A run stopped by its credit budget in stage 4 completes with stages left undone."""
        over = run(
            4,
            RunStatus.COMPLETED,
            stage_1_result=ended(keywords_processed=20),
            stage_2_result=ended(clusters_processed=4),
            stage_3_result=ended(ideas_processed=20),
            stage_4_result={**started(3, tasks_processed=5), "partial": True},
        )

        state = figures(over, plan(20, 4, 20, 20, 20, 60, 20), NOW)

        assert [s.input_count for s in state.stages] == [20, 4, 20, 5, 0, 0, 0]
        assert (state.total_items, state.completed_items, state.percentage) == (49, 49, 100)

    def test_a_cancelled_run_keeps_its_plan_for_what_it_did_not_do(self) -> None:
        over = run(
            2,
            RunStatus.CANCELLED,
            stage_1_result=ended(keywords_processed=20),
            stage_2_result={**started(3, clusters_processed=1), "partial": True},
        )

        state = figures(over, plan(20, 4, 20, 20, 20, 60, 20, floor=15), NOW)

        assert [s.input_count for s in state.stages] == [20, 4, 20, 20, 20, 60, 20]
        assert (state.completed_items, state.percentage) == (21, 15)
        assert (state.eta_seconds, state.credits_remaining) == (None, None)

    def test_a_run_from_before_the_plan_is_planned_by_its_snapshot(self) -> None:
        snapshot = {f"stage_{n}_initial": n for n in range(1, 8)}

        state = figures(run(1), snapshot_plan(snapshot), NOW)

        assert [s.input_count for s in state.stages] == [1, 2, 3, 4, 5, 6, 7]


class TestTheEta:
    def test_is_unknown_while_an_ai_stage_with_items_left_has_no_pace(self) -> None:
        first_run = run(
            2,
            stage_1_result=ended(keywords_processed=20),
            stage_2_result=started(30, clusters_processed=3),
        )

        state = figures(first_run, plan(20, 4, 20, 20, 20, 60, 20), NOW)

        assert state.eta_seconds is None

    def test_is_the_items_left_times_each_stages_pace_plus_the_delays(self) -> None:
        """In stage 6 of 60 images, 20 done in 40 s (2 s each); stage 7's 20 articles take 0.5
        s each in the site's history; 1 delay of 5 s between the stages left."""
        images = run(6, stage_6_result=started(40, images_processed=20))
        paces = {7: 0.5}

        state = figures(images, plan(0, 0, 0, 0, 0, 60, 20, paces=paces, delay=5), NOW)

        assert state.eta_seconds == 40 * 2 + 20 * 0.5 + 5

    def test_has_no_delay_after_a_stage_the_runner_will_skip(self) -> None:
        """In stage 4 of 20 articles (2 s each so far), then stage 5 with nothing planned and
        stage 6 with 60 images (1 s each): delays after stages 4 and 6, none after 5."""
        articles = run(4, stage_4_result=started(20, tasks_processed=10))

        state = figures(articles, plan(0, 0, 0, 20, 0, 60, 0, paces={6: 1.0}, delay=30), NOW)

        assert state.eta_seconds == 10 * 2 + 60 * 1 + 2 * 30

    def test_counts_the_stages_without_ai_calls_as_no_time_until_measured(self) -> None:
        images = run(6, stage_6_result=started(40, images_processed=20))

        state = figures(images, plan(0, 0, 0, 0, 0, 60, 20), NOW)

        assert state.eta_seconds == 80

    def test_uses_the_sites_history_for_the_stages_not_reached(self) -> None:
        paces = {1: 0.25, 2: 2.0, 4: 10.0, 5: 1.0, 6: 3.0}

        state = figures(run(1), plan(20, 4, 20, 20, 20, 60, 20, paces=paces), NOW)

        assert state.eta_seconds == 20 * 0.25 + 4 * 2 + 20 * 10 + 20 * 1 + 60 * 3

    def test_weighs_the_stages_own_pace_against_the_history_by_its_share_done(self) -> None:
        """10 of 20 articles in 20 s (2 s each) against 4 s in the history: 3 s each."""
        articles = run(4, stage_4_result=started(20, tasks_processed=10))

        state = figures(articles, plan(0, 0, 0, 20, 0, 0, 0, paces={4: 4.0}), NOW)

        assert state.eta_seconds == 10 * 3

    def test_starts_a_stage_at_the_historys_pace(self) -> None:
        """1 of 40 articles in 10 s: a slow first item against 4 s in the history."""
        articles = run(4, stage_4_result=started(10, tasks_processed=1))

        state = figures(articles, plan(0, 0, 0, 40, 0, 0, 0, paces={4: 4.0}), NOW)

        assert state.eta_seconds == 162  # 39 left x (1/40 x 10 s + 39/40 x 4 s), rounded up

    def test_leaves_out_the_last_pause_of_the_stage(self) -> None:
        articles = run(4, stage_4_result=started(100, tasks_processed=10))
        articles.paused_at = NOW - timedelta(seconds=90)
        articles.resumed_at = NOW - timedelta(seconds=10)

        state = figures(articles, plan(0, 0, 0, 20, 0, 0, 0), NOW)

        assert state.eta_seconds == 10 * 2

    def test_is_unknown_while_the_run_is_paused(self) -> None:
        paused = run(6, RunStatus.PAUSED, stage_6_result=started(40, images_processed=20))

        assert figures(paused, plan(0, 0, 0, 0, 0, 60, 0), NOW).eta_seconds is None


class TestTheCreditsLeft:
    def test_are_the_projection_of_the_stages_not_ended_less_what_they_spent(self) -> None:
        articles = run(
            4,
            stage_2_result=ended(clusters_processed=4, credits_used=8),
            stage_4_result=started(10, tasks_processed=5, credits_used=25),
        )
        credits = {2: "8", 4: "100", 5: "10", 6: "120"}

        state = figures(articles, plan(0, 4, 20, 20, 20, 60, 20, credits=credits), NOW)

        assert state.credits_remaining == Decimal(75 + 10 + 120)
