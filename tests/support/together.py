"""``run_together``: the same work on several threads at once, errors collected for the test."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_together(work: Callable[[int], None], threads: int, *,
                 timeout: float = 60.0) -> list[BaseException]:
    """Run ``work(0)`` … ``work(threads - 1)`` on as many threads at once; what they raised."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as error:  # reported to the test
            errors.append(error)

    started = [threading.Thread(target=guarded, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout)
    return errors
