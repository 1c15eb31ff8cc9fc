"""The polled answers, kept by the run row's version (issue 13).

Every dashboard and monitoring script polls the same few runs many times a second, and between
two changes of a run's row its answer is the same: the progress computed from the row, validated
and built as the API's models, was half of what a poll cost. The key is what the answer is made
of: the row's version (PostgreSQL's `xmin`, which every committed update of the row changes), and
for an answer that reads the clock (the duration and the ETA of a run that has not ended), the
second it was made in. A changed row is seen by the next poll; a clock-read figure is at most a
second old, as the whole seconds it shows.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

# Answers kept per process: a few per run polled (its progress, the site's current run).
MEMO_SIZE = 1024


class RowMemo(Generic[T]):
    """The answers last made, least recently used first out."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._answers: OrderedDict[Hashable, T] = OrderedDict()

    def answer(self, key: Hashable, make: Callable[[], T]) -> T:
        found = self._answers.get(key)
        if found is not None:
            self._answers.move_to_end(key)
            return found
        made = make()
        self._answers[key] = made
        if len(self._answers) > self._size:
            self._answers.popitem(last=False)
        return made


def clock_second() -> int:
    """The second a clock-read answer is kept for."""
    return int(time.time())
