"""HeadRounds: concurrent access checks share "latest block" requests, and every caller gets
the answer of a request sent after it arrived (never an older head)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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
    node = _Node(delay=0)
    gate = threading.Event()

    def fetch() -> int:
        seq = node.latest()
        if seq == 1:  # in flight until the next round has formed
            gate.wait(10)
        if seq == 2:
            raise ConnectionError("request 2 failed")
        return seq

    rounds = HeadRounds(fetch)
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
    _until(lambda: rounds.requests == 1)
    waiting = [threading.Thread(target=caller) for _ in range(5)]
    for thread in waiting:
        thread.start()
    # All five wait for round 2 to start (threading.Condition keeps its waiters in _waiters):
    # waited for, not slept on, so a loaded machine cannot split them over two rounds.
    _until(lambda: len(rounds._cond._waiters) == 5)  # type: ignore[attr-defined]
    gate.set()
    for thread in [first, *waiting]:
        thread.join()
    assert results.count(1) == 1
    errors = [r for r in results if isinstance(r, ConnectionError)]
    assert len(errors) == 5 and {str(e) for e in errors} == {"request 2 failed"}
    assert rounds.get() == 3  # not stuck


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_an_error_of_a_lone_caller_is_raised() -> None:
    node = _Node(delay=0)
    node.fail_next = True
    rounds = HeadRounds(node.latest)
    with pytest.raises(ConnectionError, match="request 1 failed"):
        rounds.get()
    assert rounds.get() == 2


def test_a_ticket_is_answered_by_a_round_sent_after_it_and_never_by_an_older_one() -> None:
    node = _Node(delay=0)
    rounds = HeadRounds(node.latest)
    early = rounds.ticket()
    assert rounds.get() == 1  # a round of its own, sent after `early` was taken
    assert rounds.get(early) == 1  # that round was sent after `early`: no request of its own
    assert rounds.requests == 1
    late = rounds.ticket()  # taken after round 1 was sent: round 1 will not do
    assert rounds.get(late) == 2
    assert rounds.get(late) == 2 and rounds.requests == 2
    assert rounds.get() == 3  # without a ticket: always a request sent after the call


def test_a_ticket_joins_the_round_in_flight_only_when_it_was_sent_after_the_ticket() -> None:
    node = _Node(delay=0.1)
    rounds = HeadRounds(node.latest)
    before = rounds.ticket()
    answers: dict[str, int] = {}

    def ask(name: str, ticket: int | None) -> None:
        answers[name] = rounds.get(ticket)

    leader = threading.Thread(target=ask, args=("leader", None))
    leader.start()
    time.sleep(0.03)  # round 1 in flight, sent after `before`, before `during`
    during = rounds.ticket()
    waiters = [threading.Thread(target=ask, args=("before", before)),
               threading.Thread(target=ask, args=("during", during))]
    for thread in waiters:
        thread.start()
    for thread in [leader, *waiters]:
        thread.join()
    assert answers == {"leader": 1, "before": 1, "during": 2}
    assert rounds.requests == 2


def test_a_failed_round_answers_no_later_ticket() -> None:
    node = _Node(delay=0)
    rounds = HeadRounds(node.latest)
    ticket = rounds.ticket()
    assert rounds.get() == 1
    node.fail_next = True
    with pytest.raises(ConnectionError, match="request 2 failed"):
        rounds.get(rounds.ticket())
    after_failure = rounds.ticket()
    assert rounds.get(ticket) == 1  # round 1 still answers a ticket older than it
    assert rounds.get(after_failure) == 3  # round 2 failed, round 1 is too old: a new request


def test_concurrent_tickets_share_requests_and_never_get_an_answer_sent_before_them() -> None:
    node = _Node()
    rounds = HeadRounds(node.latest)
    stale: list[tuple[int, int]] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(40):
            started_before = node.started  # requests started before the ticket was taken
            ticket = rounds.ticket()
            time.sleep(0.001)  # queued for a worker thread meanwhile
            answer = rounds.get(ticket)
            if answer <= started_before:
                with lock:
                    stale.append((started_before, answer))

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stale == []
    assert rounds.requests == node.started
    assert rounds.requests < 16 * 40 / 3, rounds.requests
