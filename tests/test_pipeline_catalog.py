"""The pipeline catalog (app.pipeline) that runs, credits and the API read says what the stage
implementations (app.stages) do: same numbers, names, result counters, rows, prices and limits."""

from __future__ import annotations

import pytest
from sqlalchemy.sql.util import find_tables

from app.credits.estimate import STAGE_LIMITS, STAGE_OPERATIONS
from app.pipeline.catalog import STAGE_NAMES, STAGE_NUMBERS
from app.pipeline.pending import STAGE_MODELS, pending_condition
from app.pipeline.results import COUNTERS, HANDLED
from app.stages.registry import STAGES


class TestCatalogMatchesTheStages:
    def test_every_stage_is_catalogued_under_its_own_number(self) -> None:
        assert list(STAGE_NUMBERS) == [1, 2, 3, 4, 5, 6, 7]
        assert sorted(STAGES) == list(STAGE_NUMBERS)
        assert {number: stage.number for number, stage in STAGES.items()} == {
            number: number for number in STAGE_NUMBERS
        }

    def test_each_stage_has_the_name_the_catalog_gives_it(self) -> None:
        assert {number: stage.name for number, stage in STAGES.items()} == STAGE_NAMES

    def test_the_counters_a_stage_takes_from_are_in_its_result_shape(self) -> None:
        assert sorted(COUNTERS) == list(STAGE_NUMBERS)
        for number, stage in STAGES.items():
            assert set(stage.taken_counters) <= {*COUNTERS[number], "errors"}, number

    def test_what_a_run_counts_as_handled_is_what_the_stage_takes_toward_its_limit(self) -> None:
        assert {n: stage.taken_counters for n, stage in STAGES.items()} == HANDLED

    def test_each_stage_has_a_pending_condition_on_the_rows_it_works_on(self) -> None:
        assert sorted(STAGE_MODELS) == list(STAGE_NUMBERS)
        for number in STAGE_NUMBERS:
            tables = find_tables(pending_condition(number), check_columns=True)
            assert STAGE_MODELS[number].__table__ in tables, number

    @pytest.mark.parametrize("number", [0, 8])
    def test_a_stage_outside_the_catalog_has_no_pending_condition(self, number: int) -> None:
        with pytest.raises(ValueError, match="no stage"):
            pending_condition(number)

    def test_the_estimate_prices_and_limits_each_stage_as_the_stage_does(self) -> None:
        operations = {n: stage.operation for n, stage in STAGES.items() if stage.operation}
        assert operations == STAGE_OPERATIONS
        assert {n: stage.limit_field for n, stage in STAGES.items()} == STAGE_LIMITS
