"""HeadRounds: concurrent access checks share "latest block" requests, and every caller gets
the answer of a request sent after it arrived (never an older head)."""

from __future__ import annotations

import threading
import time

import pytest

from kizuna.access.headrounds import HeadRounds


class _Node:
    """A 'latest block' that is the sequence number of the request, taken when it starts."""

    def __init__(self, delay: float = 0.002) -> None:
        self.started = 0
        self.delay = delay
        self.lock = threading.Lock()
        self.fail_next = False

    def latest(self) -> int:
        with self.lock:
            self.started += 1
            seq = self.started
            fail, self.fail_next = self.fail_next, False
        time.sleep(self.delay)
        if fail:
            raise ConnectionError(f"request {seq} failed")
        return seq


def test_a_lone_caller_sends_its_own_request() -> None:
    node = _Node(delay=0)
    rounds = HeadRounds(node.latest)
    assert [rounds.get() for _ in range(3)] == [1, 2, 3]
    assert rounds.requests == 3


def test_concurrent_callers_share_requests_and_never_get_an_older_answer() -> None:
    node = _Node()
    rounds = HeadRounds(node.latest)
    stale: list[tuple[int, int]] = []
    calls = 0
    lock = threading.Lock()

    def caller() -> None:
        nonlocal calls
        for _ in range(40):
            arrived_after = node.started  # requests started before this call began
            answer = rounds.get()
            with lock:
                calls += 1
                if answer <= arrived_after:
                    stale.append((arrived_after, answer))

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stale == []
    assert calls == 16 * 40
    assert rounds.requests == node.started
    assert rounds.requests < calls / 3, (rounds.requests, calls)  # shared, several per request


def test_a_failed_request_fails_its_whole_round_and_the_next_round_starts_afresh() -> None:
    node = _Node(delay=0.05)
    rounds = HeadRounds(node.latest)
    results: list[object] = []
    lock = threading.Lock()

    def caller() -> None:
        try:
            value: object = rounds.get()
        except ConnectionError as error:
            value = error
        with lock:
            results.append(value)

    first = threading.Thread(target=caller)
    first.start()
    time.sleep(0.01)  # request 1 in flight; the next callers form round 2, which will fail
    node.fail_next = True
    waiting = [threading.Thread(target=caller) for _ in range(5)]
    for thread in waiting:
        thread.start()
    for thread in [first, *waiting]:
        thread.join()
    assert results.count(1) == 1
    errors = [r for r in results if isinstance(r, ConnectionError)]
    assert len(errors) == 5 and {str(e) for e in errors} == {"request 2 failed"}
    assert rounds.get() == 3  # not stuck


def test_an_error_of_a_lone_caller_is_raised() -> None:
    node = _Node(delay=0)
    node.fail_next = True
    rounds = HeadRounds(node.latest)
    with pytest.raises(ConnectionError, match="request 1 failed"):
        rounds.get()
    assert rounds.get() == 2
