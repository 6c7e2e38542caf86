"""``ReadWorkers``: jobs run on the worker threads, answers and errors come back to the awaiting
request, a request that went away does not stop the workers, shutdown finishes what is queued."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kizuna.api.readworkers import ReadWorkers
from kizuna.errors import AccessDenied


def test_jobs_run_on_the_worker_threads_and_answer_their_own_caller() -> None:
    workers = ReadWorkers(2, name="t-read")

    def job(i: int) -> tuple[int, str]:
        time.sleep(0.001)
        return i, threading.current_thread().name

    async def main() -> list[tuple[int, str]]:
        return await asyncio.gather(*(workers.run(lambda i=i: job(i)) for i in range(40)))

    try:
        answers = asyncio.run(main())
    finally:
        workers.shutdown()
    assert [i for i, _ in answers] == list(range(40))
    names = {name for _, name in answers}
    assert names <= {"t-read-0", "t-read-1"} and len(names) == 2  # both threads, no others


def test_an_error_is_raised_in_the_awaiting_request_and_the_worker_goes_on() -> None:
    workers = ReadWorkers(1)

    def refuse() -> None:
        raise AccessDenied("no live grant")

    async def main() -> int:
        with pytest.raises(AccessDenied, match="no live grant"):
            await workers.run(refuse)
        return await workers.run(lambda: 7)

    try:
        assert asyncio.run(main()) == 7
    finally:
        workers.shutdown()


def test_a_request_that_went_away_leaves_the_workers_serving() -> None:
    workers = ReadWorkers(1)
    release = threading.Event()
    ran: list[str] = []

    def slow() -> str:
        release.wait(5)
        ran.append("slow")
        return "late"

    async def main() -> str:
        pending = asyncio.ensure_future(workers.run(slow))
        await asyncio.sleep(0.01)
        pending.cancel()  # the client disconnected while its read was running
        release.set()
        return await workers.run(lambda: "next")

    try:
        assert asyncio.run(main()) == "next"
    finally:
        workers.shutdown()
    assert ran == ["slow"]  # the read itself completed (its receipt is written)


def test_shutdown_finishes_queued_jobs_and_refuses_new_ones() -> None:
    workers = ReadWorkers(1)
    done: list[int] = []

    async def main() -> None:
        futures = [asyncio.ensure_future(workers.run(lambda i=i: done.append(i))) for i in range(5)]
        await asyncio.sleep(0)  # queued
        await asyncio.gather(*futures)

    asyncio.run(main())
    workers.shutdown()
    assert done == [0, 1, 2, 3, 4]

    async def after() -> None:
        await workers.run(lambda: None)

    with pytest.raises(RuntimeError, match="shut down"):
        asyncio.run(after())
    with pytest.raises(ValueError):
        ReadWorkers(0)


def test_an_app_that_never_read_starts_no_threads() -> None:
    before = threading.active_count()
    workers = ReadWorkers(4)
    assert threading.active_count() == before
    workers.shutdown()
