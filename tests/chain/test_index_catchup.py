"""The event index's pipelined catch-up: how parts are cut, fetched ahead and stored in order;
equal to a slow index; crash-safe part by part; the JSON-RPC client it picks."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from chainenv import Env, _anvil_env, scope
from web3 import EthereumTesterProvider, Web3

from kizuna.chain.index import EventIndex
from kizuna.chain.index import parts as parts_module
from kizuna.chain.index.parts import (
    FIRST_PART_BLOCKS,
    GROWTH,
    TAIL_PARTS,
    Part,
    PartPlanner,
    Prefetcher,
)
from kizuna.chain.index.store import _Fetched, _lean_rpc
from kizuna.chain.localnode import LocalNode
from kizuna.chain.rpc import LeanRpc
from kizuna.chain.signers import LocalKeySigner
from kizuna.errors import ConfigError, NodeUnreachable
from kizuna.types import Address

# --- PartPlanner ---------------------------------------------------------------------------


def _plan(start: int, target: int, *, limit: int, logs_per_block: Any,
          target_logs: int = 800) -> list[Part]:
    """Every part of ``start..target``, each observed as it is planned (``logs_per_block(n)``)."""
    planner = PartPlanner(start, target, limit=limit, target_logs=target_logs)
    out: list[Part] = []
    while (part := planner.next()) is not None:
        out.append(part)
        planner.observe(part, sum(logs_per_block(n) for n in range(part.first, part.last + 1)))
    return out


def _assert_cover(parts: list[Part], start: int, target: int) -> None:
    assert parts[0].first == start and parts[-1].last == target
    for before, after in itertools.pairwise(parts):
        assert after.first == before.last + 1  # contiguous, in order, no overlap


def test_a_small_range_is_one_part() -> None:
    for blocks in range(1, FIRST_PART_BLOCKS + 1):
        assert _plan(10, 9 + blocks, limit=2000, logs_per_block=lambda n: 50) == [
            Part(10, 9 + blocks)]
    assert _plan(10, 9, limit=2000, logs_per_block=lambda n: 1) == []  # nothing to do


def test_a_sparse_range_grows_quickly_to_the_chunk_limit() -> None:
    # A mainnet-like catch-up: a million blocks, a log every thousand.
    parts = _plan(1, 1_000_000, limit=2000, logs_per_block=lambda n: int(n % 1000 == 0))
    _assert_cover(parts, 1, 1_000_000)
    assert parts[0].blocks == FIRST_PART_BLOCKS
    assert all(b.blocks <= a.blocks * GROWTH for a, b in itertools.pairwise(parts))
    assert max(p.blocks for p in parts) == 2000
    assert len(parts) < 1_000_000 // 2000 + 100  # not thousands of requests more than needed


def test_a_dense_range_gets_parts_of_about_the_target_logs() -> None:
    parts = _plan(1, 5_000, limit=2000, logs_per_block=lambda n: 40, target_logs=800)
    _assert_cover(parts, 1, 5_000)
    # once the density is known: 800 / 40 = 20 blocks (less only near the end, see the tail)
    middle = [p for p in parts[2:] if p.last < 5_000 - 20 * TAIL_PARTS]
    assert middle and all(p.blocks == 20 for p in middle)


def test_the_last_parts_are_short_and_a_dense_tail_is_cut_fine() -> None:
    # 100 sparse blocks, then 13 blocks of 800 logs each right before the head (the benchmark's
    # shape): the density before them cannot foretell them, the tail rule still cuts them.
    parts = _plan(1, 113, limit=2000, logs_per_block=lambda n: 800 if n > 100 else n % 2)
    _assert_cover(parts, 1, 113)
    dense = [p for p in parts if p.last > 100]
    assert max(p.blocks for p in dense) <= -(-13 // TAIL_PARTS)  # not all 13 in one part
    assert len(dense) >= 5 and parts[-1].blocks == 1
    for part in parts[1:]:  # never more than 1/TAIL_PARTS of what remained (at least one)
        assert part.blocks <= max(1, -(-(113 - part.first + 1) // TAIL_PARTS))


def test_parts_shrink_at_once_when_the_chain_turns_dense() -> None:
    parts = _plan(1, 100_000, limit=2000,
                  logs_per_block=lambda n: 0 if n < 50_000 else 100, target_logs=800)
    _assert_cover(parts, 1, 100_000)
    first_dense = next(i for i, p in enumerate(parts) if p.last >= 50_000)
    # the part that met the dense stretch averaged it with empty blocks; the next is small,
    # and the one after exactly 800 / 100
    assert parts[first_dense].blocks == 2000
    assert parts[first_dense + 1].blocks < 50
    assert all(p.blocks == 8 for p in parts[first_dense + 2:-TAIL_PARTS * 4])


def test_sparse_parts_keep_more_in_flight() -> None:
    planner = PartPlanner(1, 100_000, limit=2000)
    part = planner.next()
    assert part is not None and planner.in_flight == parts_module.IN_FLIGHT  # density unknown
    planner.observe(part, 0)
    planner.next()
    assert planner.sparse and planner.in_flight == parts_module.SPARSE_IN_FLIGHT
    planner.observe(part, 8 * 1000)  # 1000 logs a block
    planner.next()
    assert not planner.sparse and planner.in_flight == parts_module.IN_FLIGHT


def test_planner_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        PartPlanner(1, 10, limit=0)
    with pytest.raises(ValueError):
        PartPlanner(1, 10, limit=10, target_logs=0)


# --- Prefetcher ----------------------------------------------------------------------------


def test_prefetcher_hands_results_back_in_submission_order() -> None:
    done: list[int] = []
    others_done, release = threading.Event(), threading.Event()

    def fetch(job: int) -> int:
        if job == 0:  # the first finishes last: only once the other two are done
            assert release.wait(timeout=10)
        done.append(job)
        if len(done) == 2:
            others_done.set()
        return job * 10

    with Prefetcher(fetch, workers=3) as ahead:
        for job in range(3):
            ahead.submit(job)
        assert others_done.wait(timeout=10)
        assert not ahead.ready  # job 0 is still running though 1 and 2 are done
        release.set()
        assert [ahead.next() for _ in range(3)] == [0, 10, 20]
    assert done == [1, 2, 0] or done == [2, 1, 0]  # the order came from the prefetcher


def test_prefetcher_reraises_a_jobs_error_in_its_place_and_stops_its_threads() -> None:
    exits: list[str] = []

    def fetch(job: int) -> int:
        if job == 1:
            raise NodeUnreachable("node gone")
        return job

    ahead: Prefetcher[int, int] = Prefetcher(
        fetch, workers=2, on_thread_exit=lambda: exits.append(threading.current_thread().name))
    with ahead:
        ahead.submit(0)
        ahead.submit(1)
        ahead.submit(2)
        assert ahead.next() == 0
        deadline = time.monotonic() + 5
        while not ahead._order[0].done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not ahead.ready  # a failed job is never "ready" (stored before: what preceded)
        with pytest.raises(NodeUnreachable):
            ahead.next()
    assert sorted(exits) == ["index-fetch-0", "index-fetch-1"]  # each worker ended, once


# --- which JSON-RPC client ------------------------------------------------------------------


def test_http_nodes_get_the_lean_client_others_keep_web3() -> None:
    lean = _lean_rpc(Web3(Web3.HTTPProvider("http://127.0.0.1:8545",
                                            request_kwargs={"timeout": 3})))
    assert isinstance(lean, LeanRpc) and lean.timeout == 3.0
    assert _lean_rpc(Web3(Web3.HTTPProvider("http://user:secret@127.0.0.1:8545"))) is None
    assert _lean_rpc(Web3(EthereumTesterProvider())) is None


def test_part_logs_must_be_positive(tester_env: Env) -> None:
    with pytest.raises(ConfigError, match="part_logs"):
        EventIndex.for_chain(tester_env.chain, part_logs=0)


# --- against a real node --------------------------------------------------------------------


class _Recording(EventIndex):
    """An index that notes, for the test, each part it committed and where it fetched it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.stored: list[tuple[int, int, int]] = []
        self.fetch_threads: set[str] = set()
        self._uncommitted: list[tuple[int, int, int]] = []
        super().__init__(*args, **kwargs)  # (its first transaction creates the tables)

    def _fetch(self, start: int, end: int) -> _Fetched:
        self.fetch_threads.add(threading.current_thread().name)
        return super()._fetch(start, end)

    def _store_part(self, cur: Any, fetched: _Fetched) -> int:
        count = super()._store_part(cur, fetched)
        self._uncommitted.append((fetched.start, fetched.end, count))
        return count

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        self._uncommitted = []
        with super()._transaction() as cur:
            yield cur
        self.stored.extend(self._uncommitted)  # only once committed


class _FailingAt(_Recording):
    """A node that stops answering for blocks from ``fail_from`` on (or a store that fails in
    the middle of a catch-up: on its ``fail_store``-th part, or the first part after that once
    a transaction has committed — parts that arrived together share one transaction, and a
    failure inside the first would leave nothing committed to check)."""

    def __init__(self, *args: Any, fail_from: int | None = None, fail_store: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_from, self.fail_store, self.stores = fail_from, fail_store, 0

    def _fetch(self, start: int, end: int) -> _Fetched:
        if self.fail_from is not None and end >= self.fail_from:
            raise NodeUnreachable("the node went away in the middle of a catch-up")
        return super()._fetch(start, end)

    def _store(self, cur: Any, rows: Any, events: Any) -> None:
        self.stores += 1
        super()._store(cur, rows, events)
        if self.fail_store is not None and self.stores >= self.fail_store and self.stored:
            raise OSError("disk full in the middle of a part")  # inside its transaction


def _grants_in_one_block(env: Env, patient: LocalKeySigner, provider: Address, count: int,
                         label: str) -> None:
    """``count`` grants mined together in one block (automine off while they are sent)."""
    rpc = env.w3.provider.make_request
    ledger = env.chain.ledger
    until = env.now() + 10**6
    fees = env.chain.sender.fees()
    nonce = env.w3.eth.get_transaction_count(patient.address, "pending")
    gas = env.chain.sender.estimate_gas(
        ledger.grant_call(provider, scope(f"{label}-0"), until, sender=patient.address),
        sender=patient.address) + 30_000
    rpc("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        for i in range(count):
            call = ledger.grant_call(provider, scope(f"{label}-{i}"), until,
                                     sender=patient.address)
            raw = patient.sign_transaction({
                "type": 2, "chainId": env.chain.chain_id, "nonce": nonce + i, "to": call.to,
                "data": call.data, "value": 0, "gas": gas,
                "maxFeePerGas": fees.max_fee_per_gas * 4,
                "maxPriorityFeePerGas": fees.max_priority_fee_per_gas})
            answer = rpc("eth_sendRawTransaction", ["0x" + raw.hex()])  # type: ignore[arg-type]
            assert "error" not in answer, answer
        rpc("evm_mine", [])  # type: ignore[arg-type]
    finally:
        rpc("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert env.w3.eth.get_transaction_count(patient.address) == nonce + count


@pytest.fixture(scope="module")
def sparse_then_dense(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, int, int]]:
    """A chain with a sparse stretch (a grant every 300 blocks) then a dense one (6 blocks of
    25 grants each), on an anvil of the module's own; yields the env, the first dense block and
    the head. Made once: its tests only read it (each indexes it into a file of its own)."""
    with LocalNode(log_path=tmp_path_factory.mktemp("anvil-catchup") / "anvil.log") as node:
        yield _sparse_then_dense(_anvil_env(node))


def _sparse_then_dense(env: Env) -> tuple[Env, int, int]:
    patient, doctor = env.new_signer(), env.new_signer(funded=False)
    for k in range(5):
        env.chain.ledger.grant(doctor.address, scope(f"sparse {k}"), env.now() + 999,
                               signer=patient)
        env.w3.provider.make_request("anvil_mine", [hex(300)])  # type: ignore[arg-type]
    first_dense = env.w3.eth.block_number + 1
    for b in range(6):
        _grants_in_one_block(env, patient, doctor.address, 25, f"dense {b}")
    return env, first_dense, env.w3.eth.block_number


def _slow_index(env: Env) -> EventIndex:
    """The other path: web3-formatted logs, decoded one by one, parts one after the other."""
    slow = EventIndex.for_chain(env.chain, chunk_size=500)
    slow._raw = False  # as eth-tester is indexed: no prefetch, web3's get_logs
    slow.sync()
    return slow


@pytest.mark.anvil
def test_pipelined_parts_arrive_and_are_stored_in_chain_order(
        sparse_then_dense: tuple[Env, int, int], tmp_path: Path) -> None:
    env, first_dense, head = sparse_then_dense
    index = _Recording(env.w3, EventIndex.for_chain(env.chain).source,
                       tmp_path / "index.sqlite", part_logs=25)
    assert index.sync().number == head
    start = env.deployment.deploy_block
    stored = index.stored
    assert stored[0][0] == start and stored[-1][1] == head
    for (_, end, _), (begin, _, _) in itertools.pairwise(stored):
        assert begin == end + 1  # each part right after the one before: chain order, no gap
    assert sum(count for _, _, count in stored) == index.event_count()
    sparse = [s for s in stored if s[1] < first_dense]
    dense = [s for s in stored if s[0] >= first_dense]
    assert max(end - begin + 1 for begin, end, _ in sparse) >= 32  # grew on the sparse stretch
    # the tail rule's cost: about TAIL_PARTS parts per e-fold of what remains, not per block
    assert len(sparse) <= TAIL_PARTS * math.log(first_dense - start)
    # once the density is seen, a block (25 logs = part_logs) a part
    assert all(begin == end and count == 25 for begin, end, count in dense[1:])
    assert index.fetch_threads and all(n.startswith("index-fetch-") for n in index.fetch_threads)
    slow = _slow_index(env)
    assert index.dump() == slow.dump()
    assert index.event_count() == slow.event_count() > 150


@pytest.mark.anvil
@pytest.mark.parametrize("failure", ["fetch", "store"])
def test_a_failure_mid_catch_up_keeps_every_committed_part_and_a_resync_completes_it(
        sparse_then_dense: tuple[Env, int, int], tmp_path: Path, failure: str) -> None:
    env, first_dense, head = sparse_then_dense
    path = tmp_path / "index.sqlite"
    source = EventIndex.for_chain(env.chain).source
    options: dict[str, Any] = ({"fail_from": first_dense + 3} if failure == "fetch"
                               else {"fail_store": 4})
    broken = _FailingAt(env.w3, source, path, part_logs=25, **options)
    with pytest.raises(NodeUnreachable if failure == "fetch" else OSError):
        broken.sync()
    assert broken.stored, "some parts were committed before the failure"
    committed_to = broken.stored[-1][1]
    assert broken.last_block == committed_to < head
    slow = _slow_index(env)
    expected = [r for r in slow.dump()["raw_logs"] if r[0] <= committed_to]
    assert broken.dump()["raw_logs"] == expected  # exactly the committed parts, nothing more
    if failure == "fetch":
        assert committed_to == first_dense + 2  # every part before the node failed
    broken.close()
    resumed = EventIndex.for_chain(env.chain, path)
    assert resumed.last_block == committed_to
    assert resumed.sync().number == head
    assert resumed.dump() == slow.dump()
    resumed.close()


class _ReorgingAt(_Recording):
    """The chain reorganises (``reorg()``) just before the part starting at ``reorg_at`` is
    fetched, once a part reaching past ``committed_past`` (the fork) has been committed: the
    index then holds blocks of the old branch that the new one replaced."""

    def __init__(self, *args: Any, reorg_at: int, committed_past: int, reorg: Any,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reorg_at, self.committed_past, self.reorg = reorg_at, committed_past, reorg
        self.reorged = False
        self.claim = threading.Lock()

    def _fetch(self, start: int, end: int) -> _Fetched:
        with self.claim:  # one fetching thread reorganises; the others wait until it has
            self._maybe_reorganise(start)
        return super()._fetch(start, end)

    def _maybe_reorganise(self, start: int) -> None:
        if start >= self.reorg_at and not self.reorged:
            deadline = time.monotonic() + 10  # the main thread commits what arrived meanwhile
            while (not any(e > self.committed_past for _, e, _ in self.stored)
                   and time.monotonic() < deadline):
                time.sleep(0.005)
            assert any(e > self.committed_past for _, e, _ in self.stored)
            self.reorged = True
            self.reorg()


@pytest.mark.anvil
def test_a_reorg_between_two_parts_is_rolled_back_not_stitched_in(
        fresh_anvil: LocalNode, tmp_path: Path) -> None:
    """Parts fetched before a reorg and parts fetched after it must not be stored side by
    side: each part's end hash is consistent on its own, so only the link to the part before
    (the hash of the block before it) shows the switch of branch."""
    env = _anvil_env(fresh_anvil)
    patient, doctor, nurse = env.new_signer(), env.new_signer(funded=False), \
        env.new_signer(funded=False)
    env.chain.ledger.grant(doctor.address, scope("before"), env.now() + 999, signer=patient)
    rpc = env.w3.provider.make_request
    snapshot = rpc("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    fork = env.w3.eth.block_number
    for b in range(6):  # branch A: six dense blocks of grants to the doctor
        _grants_in_one_block(env, patient, doctor.address, 25, f"a {b}")

    def reorganise() -> None:  # branch B from the snapshot: eight blocks, grants to the nurse
        assert rpc("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
        for b in range(8):
            _grants_in_one_block(env, patient, nurse.address, 25, f"b {b}")

    index = _ReorgingAt(env.w3, EventIndex.for_chain(env.chain).source,
                        tmp_path / "index.sqlite", part_logs=25, reorg_at=fork + 4,
                        committed_past=fork, reorg=reorganise)
    head = index.sync()
    assert index.reorged and index.reorgs == 1  # branch A's committed blocks rolled back
    assert head.number == env.w3.eth.block_number == fork + 8
    assert index.grantees(doctor.address) == [patient.address]  # the grant before the fork
    assert len(index.grants_to(doctor.address)) == 1  # none of branch A's 150
    assert len(index.grants_to(nurse.address)) == 200
    fresh = _slow_index(env)
    assert index.dump() == fresh.dump()
