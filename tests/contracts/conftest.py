"""Fixtures of the contract suite: one :class:`Bench` per session, rewound before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ledger_harness import Actors, Bench


@pytest.fixture(scope="session")
def bench_session() -> Bench:
    return Bench()


@pytest.fixture
def bench(bench_session: Bench) -> Iterator[Bench]:
    """The contracts right after set-up (providers registered, clock at T0)."""
    bench_session.reset()
    yield bench_session
    bench_session.reset()


@pytest.fixture
def actors(bench: Bench) -> Actors:
    return bench.actors
