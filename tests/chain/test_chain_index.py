"""The event index: queries, incremental sync, restart, chunking, reorgs, and the head rule."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from chainenv import Env, _anvil_env, scope
from eth_account import Account
from eth_utils.crypto import keccak

from kizuna.chain.artifacts import CONTRACT_NAMES, load_artifact
from kizuna.chain.connection import connect
from kizuna.chain.deploy import deploy
from kizuna.chain.index import EventIndex, FreshIndex, StaleRead, projections, queries
from kizuna.chain.index.events import EventDecoder, event_specs, raw_row
from kizuna.chain.index.projections import projected_events
from kizuna.chain.localnode import LocalNode
from kizuna.chain.models import BlockRef, CareEventKind, Grant
from kizuna.errors import ConfigError, NodeUnreachable
from kizuna.types import Commitment, RecordId

UMBRAL = b"\x02" + b"\x33" * 32


def _id(label: str) -> RecordId:
    return RecordId(bytes(keccak(text=label)))


def test_every_state_changing_event_has_a_projection() -> None:
    raw_only = {("ConsentLedger", "GuardianActed"), ("ConsentLedger", "EIP712DomainChanged"),
                ("ProviderRegistry", "RoleAdminChanged"), ("AccessLog", "RoleAdminChanged"),
                # studies are read from the chain by kizuna/chain/agents/studies.py
                ("StudyRegistry", "StudyRegistered"), ("StudyRegistry", "StudyConsented"),
                ("StudyRegistry", "StudyConsentWithdrawn"),
                ("StudyRegistry", "EIP712DomainChanged"),
                # an answer is projected through the CareEventLogged it emits with this event;
                # the pairing with its request is checked from the answer's transaction receipt
                # (kizuna/services/data_requests.py)
                ("ConsentLedger", "DataRequestAnswered")}
    every = {(name, spec.name) for name in CONTRACT_NAMES
             for spec in event_specs(load_artifact(name).abi_list)}
    assert set(projected_events()) == every - raw_only


def _scenario(env: Env) -> dict[str, object]:
    """A bit of everything, on any backend."""
    ledger, registry, log = env.chain.ledger, env.chain.registry, env.chain.access_log
    alice, bob, guardian = env.new_signer(), env.new_signer(), env.new_signer()
    doctor, nurse = env.new_signer(), env.new_signer()
    registry.add_provider(doctor.address, UMBRAL, scope("licence d"), signer=env.admin)
    registry.add_provider(nurse.address, UMBRAL, scope("licence n"), signer=env.admin)
    registry.suspend_provider(nurse.address, signer=env.admin)
    soon, later = env.now() + 50, env.now() + 10_000
    ledger.register_record(_id("a1"), Commitment(scope("c1")), scope("lab"), signer=alice)
    ledger.supersede_record(_id("a1"), _id("a2"), Commitment(scope("c2")), scope("lab"),
                            signer=alice)
    ledger.register_record(_id("b1"), Commitment(scope("c3")), scope("notes"), signer=bob)
    ledger.grant(doctor.address, scope("lab"), later, signer=alice)
    ledger.grant_batch(doctor.address, [scope("notes"), scope("imaging")], soon, signer=alice)
    ledger.grant(doctor.address, scope("lab"), later, signer=bob)
    ledger.grant(nurse.address, scope("lab"), later, signer=bob)
    ledger.revoke_all(nurse.address, signer=bob)
    ledger.appoint_guardian(guardian.address, later, signer=alice)
    ledger.set_emergency_policy(True, 600, signer=alice)
    ledger.open_emergency_access(alice.address, 300, 42, signer=doctor)
    ledger.log_care_event(alice.address, CareEventKind.VISIT_REPORTED, Commitment(scope("r")),
                          provider=doctor.address, scope_id=scope("lab"), signer=doctor)
    ledger.log_care_event(alice.address, CareEventKind.BOOKING_REQUESTED,
                          Commitment(scope("b")), signer=guardian, provider=doctor.address)
    ledger.request_access(bob.address, Commitment(scope("why")), signer=doctor)
    now = env.now()
    log.anchor(bytes(keccak(text="root 0")), 3, now - 100, now - 50, signer=env.admin)
    log.anchor(bytes(keccak(text="root 1")), 2, now - 50, now - 1, signer=env.admin)
    return {"alice": alice, "bob": bob, "guardian": guardian, "doctor": doctor, "nurse": nurse,
            "soon": soon}


def test_queries_answer_what_the_chain_says(env: Env) -> None:
    who = _scenario(env)
    alice, bob, doctor, nurse, guardian = (
        who[k].address for k in ("alice", "bob", "doctor", "nurse", "guardian"))  # type: ignore[attr-defined]
    index = EventIndex.for_chain(env.chain)
    head = index.sync()
    assert head.number == env.w3.eth.block_number
    assert index.grantees(doctor) == sorted([alice, bob])
    assert index.grantees(nurse) == []  # revoked all
    alice_grants = index.grants_of(alice)
    assert {g.scope_id for g in alice_grants} == {scope("lab"), scope("notes"), scope("imaging")}
    assert all(isinstance(g, Grant) and g.live for g in alice_grants)
    assert [g.live for g in index.grants_of(bob, live_only=False)
            if g.provider == nurse] == [False]
    assert len(index.grants_to(doctor)) == 4

    records = index.records_of(alice)
    assert [r.record_id for r in records] == [_id("a2")]
    assert records[0].supersedes == _id("a1") and records[0].commitment == scope("c2")
    everything = index.records_of(alice, include_superseded=True)
    assert [r.superseded_by for r in everything] == [_id("a2"), None]

    events = index.care_events(patient=alice)
    assert [e.kind for e in events] == [CareEventKind.BOOKING_REQUESTED,
                                        CareEventKind.VISIT_REPORTED]
    assert index.care_events(kind=CareEventKind.VISIT_REPORTED)[0].actor == doctor
    assert len(index.care_events(provider=doctor)) == 2
    assert index.care_events(patient=bob) == []

    pending = index.emergency_accesses(awaiting_review=True)
    assert [(e.patient, e.provider, e.reason_code) for e in pending] == [(alice, doctor, 42)]
    assert (pending[0].reviewed_by, pending[0].reviewed_at) == (None, None)
    index.mark_reviewed(pending[0], reviewer=bob, at=head.timestamp)
    assert index.emergency_accesses(awaiting_review=True) == []
    done = index.emergency_accesses(awaiting_review=False, provider=doctor)[0]
    # Who reviewed it and when: what the provider's page shows (GET /provider/emergencies).
    assert (done.reviewed, done.reviewed_by, done.reviewed_at) == (True, bob, head.timestamp)

    assert [(r.patient, r.provider) for r in index.access_requests(provider=doctor)] == [
        (bob, doctor)]
    assert [g.guardian for g in index.guardians_of(alice)] == [guardian]
    assert [(p.address, p.active) for p in index.providers()] == sorted(
        [(doctor, True), (nurse, False)])
    assert [p.address for p in index.providers(active_only=True)] == [doctor]
    batches = index.receipt_batches()
    assert [(b.batch_index, b.count) for b in batches] == [(0, 3), (1, 2)]

    # The index agrees with the chain's own view for every combination, at the head...
    people, scopes = [alice, bob], [scope("lab"), scope("notes"), scope("imaging"), scope("x")]
    for patient, provider, sc in itertools.product(people, [doctor, nurse], scopes):
        assert index.has_access(patient, provider, sc) == env.chain.ledger.has_access(
            patient, provider, sc), (patient, provider, sc)
    # ...and after time passes (the short batch grant and the emergency access expire).
    env.advance(400)
    head = index.sync()
    assert {g.scope_id for g in index.grants_of(alice)} == {scope("lab")}
    for patient, provider, sc in itertools.product(people, [doctor, nurse], scopes):
        assert index.has_access(patient, provider, sc, at=head) == env.chain.ledger.has_access(
            patient, provider, sc), (patient, provider, sc)


def test_resume_after_restart_and_small_chunks(tester_env: Env, tmp_path: Path) -> None:
    _scenario(tester_env)
    path = tmp_path / "index.sqlite"
    first = EventIndex.for_chain(tester_env.chain, path, chunk_size=3)
    first.sync(to_block=tester_env.w3.eth.block_number - 5)
    partial = first.event_count()
    first.close()
    patient, provider = tester_env.new_signer(), tester_env.new_signer(funded=False)
    tester_env.chain.ledger.grant(provider.address, scope("late"), tester_env.now() + 99,
                                  signer=patient)
    resumed = EventIndex.for_chain(tester_env.chain, path, chunk_size=3)
    resumed.sync()
    assert 0 < partial < resumed.event_count()
    one_go = EventIndex.for_chain(tester_env.chain, chunk_size=10_000)
    one_go.sync()
    assert resumed.dump() == one_go.dump()
    assert resumed.grantees(provider.address) == [patient.address]
    resumed.close()


def test_the_head_is_the_last_indexed_block_in_one_statement(tester_env: Env,
                                                             tmp_path: Path) -> None:
    """``EventIndex.head`` (asked by every read's access check) is one query: the last block
    fully indexed with its stored hash and time, nothing before the first sync."""
    _scenario(tester_env)
    index = EventIndex.for_chain(tester_env.chain, tmp_path / "index.sqlite")
    assert index.head is None
    assert queries.head(index.db) == (index.last_block, None)
    target = tester_env.w3.eth.block_number - 2
    index.sync(to_block=target)
    block = tester_env.w3.eth.get_block(target)
    expected = BlockRef(number=target, hash=bytes(block["hash"]),
                        timestamp=int(block["timestamp"]))
    assert index.head == expected
    assert queries.head(index.db) == (target, expected)
    index.close()


def test_an_index_file_belongs_to_one_deployment(tester_env: Env, tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    EventIndex.for_chain(tester_env.chain, path).close()
    # A second deployment on the same chain: other addresses, so another index.
    second = deploy(tester_env.w3, Account.from_key(tester_env.admin._account.key),
                    directory=None)
    with pytest.raises(ConfigError, match="another chain or deployment"):
        EventIndex.for_chain(connect(tester_env.w3, second), path)


def test_decisions_are_never_older_than_the_index_head(env: Env) -> None:
    patient, provider = env.new_signer(), env.new_signer(funded=False)
    ledger = env.chain.ledger
    fresh = FreshIndex(env.chain, EventIndex.for_chain(env.chain))
    ledger.grant(provider.address, scope("lab"), env.now() + 3600, signer=patient)
    decision = fresh.decide(patient.address, provider.address, scope("lab"))
    assert decision.allowed and decision.expires_at > decision.block.timestamp
    assert decision.block == fresh.index.head
    assert decision.block.number == env.w3.eth.block_number
    old = decision.block
    env.mine()
    newer = fresh.head()
    assert newer.number > old.number
    with pytest.raises(StaleRead, match=f"block {old.number}"):
        fresh.decide_at(patient.address, provider.address, scope("lab"), old)
    assert fresh.decide_at(patient.address, provider.address, scope("lab"), newer).allowed


def test_a_revoke_is_reflected_before_the_next_read(env: Env) -> None:
    patient, provider = env.new_signer(), env.new_signer(funded=False)
    ledger = env.chain.ledger
    fresh = FreshIndex(env.chain, EventIndex.for_chain(env.chain))
    ledger.grant(provider.address, scope("lab"), env.now() + 3600, signer=patient)
    assert fresh.grantees(provider.address) == [patient.address]
    assert [g.scope_id for g in fresh.grants_of(patient.address)] == [scope("lab")]
    receipt = ledger.revoke(provider.address, scope("lab"), signer=patient)
    # No explicit sync: the very next read sees the revoking block.
    assert fresh.grantees(provider.address) == []
    assert fresh.grants_to(provider.address) == []
    decision = fresh.decide(patient.address, provider.address, scope("lab"))
    assert not decision.allowed and decision.expires_at == 0
    assert decision.block.number >= receipt.block_number
    # Same for revokeAll.
    ledger.grant(provider.address, scope("lab"), env.now() + 3600, signer=patient)
    assert fresh.grantees(provider.address) == [patient.address]
    ledger.revoke_all(provider.address, signer=patient)
    assert fresh.grantees(provider.address) == []
    assert not fresh.decide(patient.address, provider.address, scope("lab")).allowed


def _rpc(env: Env, method: str, *params: object) -> object:
    answer = env.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    return answer["result"]


@pytest.mark.anvil
def test_reorg_rolls_back_and_ends_equal_to_a_fresh_index(fresh_anvil: LocalNode) -> None:
    env = _anvil_env(fresh_anvil)
    patient, doctor, nurse = env.new_signer(), env.new_signer(), env.new_signer()
    ledger = env.chain.ledger
    ledger.register_record(_id("kept"), Commitment(scope("c")), scope("lab"), signer=patient)
    index = EventIndex.for_chain(env.chain, reorg_window=64)
    index.sync()
    snapshot = _rpc(env, "evm_snapshot")

    # Fork A: grants to the doctor, a record, a care event; the index sees them.
    ledger.grant(doctor.address, scope("lab"), env.now() + 999, signer=patient)
    ledger.register_record(_id("fork a"), Commitment(scope("a")), scope("lab"), signer=patient)
    ledger.log_care_event(patient.address, CareEventKind.DATA_SENT, Commitment(scope("a")),
                          signer=patient)
    head_a = index.sync()
    assert index.grantees(doctor.address) == [patient.address]

    # The chain reorganises: back to the snapshot, then fork B, longer, with other events.
    assert _rpc(env, "evm_revert", snapshot) is True
    chain_b = connect(fresh_anvil.rpc_url, env.deployment)  # fresh nonce caches
    chain_b.ledger.grant(nurse.address, scope("imaging"), env.now() + 999, signer=patient)
    chain_b.ledger.revoke(nurse.address, scope("imaging"), signer=patient)
    chain_b.ledger.grant(nurse.address, scope("notes"), env.now() + 999, signer=patient)
    chain_b.ledger.register_record(_id("fork b"), Commitment(scope("b")), scope("lab"),
                                   signer=patient)
    head_b = index.sync()
    assert head_b.number > head_a.number and index.reorgs == 1
    assert index.grantees(doctor.address) == []
    assert index.grantees(nurse.address) == [patient.address]
    assert [r.record_id for r in index.records_of(patient.address)] == [_id("kept"),
                                                                         _id("fork b")]
    assert index.care_events(patient=patient.address) == []
    fresh = EventIndex.for_chain(chain_b)
    fresh.sync()
    assert index.dump() == fresh.dump()

    # A reorg to a *shorter* chain with no new events: rolled back too.
    snapshot = _rpc(env, "evm_snapshot")
    chain_b.ledger.grant(doctor.address, scope("x"), env.now() + 999, signer=patient)
    index.sync()
    assert index.grantees(doctor.address) == [patient.address]
    _rpc(env, "evm_revert", snapshot)
    assert index.sync().number == env.w3.eth.block_number
    assert index.grantees(doctor.address) == [] and index.reorgs == 2
    assert index.dump() == fresh.dump()


@pytest.mark.anvil
def test_json_and_web3_shaped_logs_decode_the_same(anvil_env: Env) -> None:
    _scenario(anvil_env)
    index = EventIndex.for_chain(anvil_env.chain)
    decoder = EventDecoder({a: (n, anvil_env.chain.abis[n])
                            for n, a in anvil_env.deployment.addresses.items()})
    start, end = anvil_env.deployment.deploy_block, anvil_env.w3.eth.block_number
    raw = index._logs(start, end)
    formatted = anvil_env.w3.eth.get_logs({"fromBlock": start, "toBlock": end,
                                           "address": decoder.addresses})  # type: ignore[typeddict-item]
    assert len(raw) == len(formatted) > 20
    for json_log, web3_log in zip(raw, formatted, strict=True):
        full_json = decoder.index_json(json_log)  # every event's arguments wanted
        assert full_json is not None and full_json[1] == decoder.decode_raw(web3_log)
    # The index skips the arguments of events it keeps raw only, and nothing else.
    names = {(e.contract, e.name): e for _, e in filter(None, map(index.decoder.index_json, raw))
             if e}
    assert ("ConsentLedger", "GuardianActed") not in names
    assert ("ProviderRegistry", "RoleGranted") in names  # roles are projected
    assert names[("ConsentLedger", "AccessGranted")].args["provider"]
    # The catch-up's own path: every log's raw row as a full decode gives it, and the decoded
    # event exactly for the projected ones.
    projected = 0
    for json_log, web3_log in zip(raw, formatted, strict=True):
        taken = index.decoder.index_json(json_log)
        full = decoder.decode_raw(web3_log)
        assert taken is not None and full is not None
        row, event = taken
        assert row == raw_row(full)
        if (full.contract, full.name) in projections.HANDLERS:
            assert event == full
            projected += 1
        else:
            assert event is None
    assert projected > 10


@pytest.mark.anvil
def test_a_reorg_deeper_than_the_window_reindexes_from_the_deploy_block(
        fresh_anvil: LocalNode) -> None:
    env = _anvil_env(fresh_anvil)
    patient, doctor = env.new_signer(), env.new_signer()
    index = EventIndex.for_chain(env.chain, reorg_window=1)
    index.sync()
    snapshot = _rpc(env, "evm_snapshot")
    for k in range(4):
        env.chain.ledger.grant(doctor.address, scope(f"a{k}"), env.now() + 999, signer=patient)
        index.sync()
    assert len(index.grants_of(patient.address)) == 4
    _rpc(env, "evm_revert", snapshot)
    chain_b = connect(fresh_anvil.rpc_url, env.deployment)
    for k in range(6):
        chain_b.ledger.grant(doctor.address, scope(f"b{k}"), env.now() + 999, signer=patient)
    index.sync()
    assert index.reorgs == 1
    assert {g.scope_id for g in index.grants_of(patient.address)} == {
        scope(f"b{k}") for k in range(6)}
    fresh = EventIndex.for_chain(chain_b)
    fresh.sync()
    assert index.dump() == fresh.dump()


@pytest.mark.anvil
def test_sync_against_a_node_that_went_away(tmp_path: Path) -> None:
    node = LocalNode().start()
    try:
        env = _anvil_env(node)
        index = EventIndex.for_chain(env.chain, tmp_path / "index.sqlite")
        head = index.sync()
    finally:
        node.stop()
    with pytest.raises(NodeUnreachable):
        index.sync()
    assert index.head == head  # the cache is intact and still answers
    assert index.grantees(env.admin.address) == []


@pytest.mark.anvil
def test_fresh_reads_from_many_threads_while_the_chain_moves(anvil_env: Env) -> None:
    import threading

    patient, provider = anvil_env.new_signer(), anvil_env.new_signer(funded=False)
    fresh = FreshIndex(anvil_env.chain, EventIndex.for_chain(anvil_env.chain))
    errors: list[BaseException] = []
    seen: list[list[int]] = [[] for _ in range(4)]
    stop = threading.Event()

    def reader(slot: int) -> None:
        try:
            while not stop.is_set():
                decision = fresh.decide(patient.address, provider.address, scope("lab"))
                seen[slot].append(decision.block.number)
                fresh.grantees(provider.address)
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):
            anvil_env.chain.ledger.grant(provider.address, scope("lab"), anvil_env.now() + 999,
                                         signer=patient)
            anvil_env.chain.ledger.revoke(provider.address, scope("lab"), signer=patient)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    for numbers in seen:
        assert numbers and numbers == sorted(numbers)  # each reader's head never goes back
    final = fresh.decide(patient.address, provider.address, scope("lab"))
    assert not final.allowed and fresh.grantees(provider.address) == []


def test_lag_keeps_the_index_behind_the_head(tester_env: Env) -> None:
    patient, provider = tester_env.new_signer(), tester_env.new_signer(funded=False)
    index = EventIndex.for_chain(tester_env.chain, lag=2)
    tester_env.chain.ledger.grant(provider.address, scope("lab"), tester_env.now() + 999,
                                  signer=patient)
    head = index.sync()
    assert head.number == tester_env.w3.eth.block_number - 2
    assert index.grantees(provider.address) == []  # the grant is in the last two blocks
    tester_env.mine(2)
    index.sync()
    assert index.grantees(provider.address) == [patient.address]
    with pytest.raises(ConfigError):
        EventIndex.for_chain(tester_env.chain, lag=-1)
    with pytest.raises(ConfigError, match="without lag"):
        FreshIndex(tester_env.chain, index)


def test_fresh_reads_see_what_was_just_mined(env: Env) -> None:
    patient, doctor = env.new_signer(), env.new_signer()
    env.chain.registry.add_provider(doctor.address, UMBRAL, scope("licence"), signer=env.admin)
    fresh = FreshIndex(env.chain, EventIndex.for_chain(env.chain))
    assert fresh.emergency_accesses(awaiting_review=True) == []
    env.chain.ledger.set_emergency_policy(True, 600, signer=patient)
    env.chain.ledger.open_emergency_access(patient.address, 60, 3, signer=doctor)
    pending = fresh.emergency_accesses(awaiting_review=True)
    assert [(e.patient, e.provider, e.reason_code) for e in pending] == [
        (patient.address, doctor.address, 3)]
    env.chain.ledger.request_access(patient.address, Commitment(scope("why")), signer=doctor)
    assert [r.provider for r in fresh.access_requests(patient=patient.address)] == [
        doctor.address]
    now = env.now()
    env.chain.access_log.anchor(bytes(keccak(text="r")), 1, now - 9, now - 1, signer=env.admin)
    assert [b.count for b in fresh.receipt_batches()] == [1]
    env.chain.ledger.log_care_event(patient.address, CareEventKind.DATA_SENT,
                                    Commitment(scope("d")), signer=patient)
    assert [e.kind for e in fresh.care_events(patient=patient.address)] == [
        CareEventKind.DATA_SENT]
    env.chain.ledger.register_record(_id("x"), Commitment(scope("c")), scope("n"),
                                     signer=patient)
    assert [r.record_id for r in fresh.records_of(patient.address)] == [_id("x")]


SYNCER = """
import os, sys, time
from pathlib import Path
from kizuna.chain.connection import connect
from kizuna.chain.index import EventIndex
chain = connect(sys.argv[1], sys.argv[2])
index = EventIndex.for_chain(chain, sys.argv[3], chunk_size=2)
ready, stop = Path(sys.argv[4]), Path(sys.argv[5])
index.sync()
(ready / str(os.getpid())).touch()
deadline = time.monotonic() + 120  # a safety net: the test touches `stop` long before
while not stop.exists() and time.monotonic() < deadline:
    index.sync()
index.close()
"""


@pytest.mark.anvil
def test_processes_sharing_one_index_file_never_index_a_block_twice(
        anvil_env: Env, anvil: LocalNode, tmp_path: Path) -> None:
    """Service instances of one home share its index file: while events arrive, four
    processes sync it at once (small chunks, many commits), and it ends equal to a fresh
    index of the chain — no block range stored twice, nothing lost. The syncers race from the
    first event to the last (each has synced once before the events start) and stop then,
    rather than spinning for a fixed time."""
    import subprocess
    import sys
    import time

    env = anvil_env
    deployment_file = env.deployment.save(tmp_path / "deployments")
    path = tmp_path / "shared-index.sqlite"
    EventIndex.for_chain(env.chain, path).close()  # the file exists before they race
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    ready.mkdir()
    syncers = [subprocess.Popen([sys.executable, "-c", SYNCER, anvil.rpc_url,
                                 str(deployment_file), str(path), str(ready), str(stop)],
                                stderr=subprocess.PIPE) for _ in range(4)]
    try:
        deadline = time.monotonic() + 120
        while len(list(ready.iterdir())) < 4 and time.monotonic() < deadline:
            assert all(s.poll() is None for s in syncers), "a syncer exited before the race"
            time.sleep(0.1)
        people = _scenario(env)
        alice, doctor = people["alice"], people["doctor"]
        for i in range(60):
            env.chain.ledger.grant(doctor.address, scope(f"shared {i}"),  # type: ignore[attr-defined]
                                   env.now() + 10_000, signer=alice)  # type: ignore[arg-type]
    finally:
        stop.touch()
        failures = [s.stderr.read().decode()[-600:] for s in syncers  # type: ignore[union-attr]
                    if s.wait(timeout=120) != 0]
    assert len(list(ready.iterdir())) == 4  # all four raced
    assert failures == []
    shared = EventIndex.for_chain(env.chain, path)
    fresh = EventIndex.for_chain(env.chain)
    head = env.w3.eth.block_number
    shared.sync(to_block=head)
    fresh.sync(to_block=head)
    assert shared.dump() == fresh.dump()
    assert shared.event_count() == fresh.event_count() > 60
    shared.close()
    fresh.close()
