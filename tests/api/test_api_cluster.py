"""A cluster of API instances on one database: the index follower and the receipt anchorer run
on one elected instance (kizuna.services.leader), and another takes over when it dies.

Real parts throughout: ``kizuna serve`` processes (uvicorn) on one anvil, one content store and
one database -- a PostgreSQL server started here (advisory-lock election) and a SQLite file
(flock election). The leader is killed with SIGKILL; the survivors must anchor the receipts
served after the kill within one interval, delete the key fragments of a grant revoked from the
patient's wallet (the follower's work), and the chain must hold every receipt in exactly one
anchored batch (no batch anchored twice).
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from apienv import ANCHORER, ApiServer, ChainEnv, settings_for
from eth_utils.address import to_checksum_address
from participants import HttpPatient, HttpProvider
from sqlalchemy import func, select

from kizuna.chain.localnode import dev_private_keys, free_port
from kizuna.chain.signers import LocalKeySigner
from kizuna.db import Database
from kizuna.db import schema as t
from kizuna.services.leader import (
    LEADER_LOCK_KEY,
    ClusterLeader,
    FileElection,
    PostgresElection,
    election_for,
)

pytestmark = pytest.mark.anvil

LAB = "Observation:laboratory"
FOLLOW_S = 0.5
"""The election's (and the follower's) interval in these tests."""
ANCHOR_S = 1.0
"""The anchorer's interval in these tests."""
SLACK_S = 8.0
"""What a pass itself may take on a busy two-core machine (an anchor transaction, a sync)."""
PGSERVER = Path(__file__).resolve().parents[1] / "support" / "pgserver.py"


def _pgserver() -> ModuleType:
    """The suite's throwaway PostgreSQL (tests/support/pgserver.py), loaded by path."""
    spec = importlib.util.spec_from_file_location("kizuna_tests_pgserver", PGSERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pg = _pgserver()
    reason = pg.postgres_available()
    if reason:
        pytest.skip(reason)
    with pg.PostgresServer(tmp_path_factory.mktemp("pg")) as server:
        yield server.url


def _fresh_postgres(server_url: str) -> str:
    return str(_pgserver().fresh_database(server_url))


def _lock_ids() -> tuple[int, int]:
    """The leadership's advisory lock as ``pg_locks`` shows a bigint key (high, low halves)."""
    key = LEADER_LOCK_KEY & 0xFFFFFFFFFFFFFFFF
    return key >> 32, key & 0xFFFFFFFF


# -- the elections on their own --------------------------------------------------------------


def test_postgres_election_one_leader_and_takeover(postgres_server: str) -> None:
    url = _fresh_postgres(postgres_server)
    first, second = PostgresElection(url), PostgresElection(url)
    try:
        assert first.try_lead() and first.try_lead()  # held, and kept on the next try
        assert not second.try_lead()
        # the leader's session ends (its process died, the network dropped it): the server
        # frees the lock, the other takes it, and the old leader knows it no longer leads
        import psycopg

        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name LIKE 'kizuna-leader%%' "
                          "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                          "AND granted AND classid = %s AND objid = %s)", _lock_ids())
            # pg_terminate_backend only signals the backend: the lock is freed when it has
            # exited, a moment later on a busy machine
            deadline = time.monotonic() + 30
            while admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND granted AND classid = %s AND objid = %s",
                                _lock_ids()).fetchone()[0]:
                assert time.monotonic() < deadline, "the terminated leader still holds the lock"
                time.sleep(0.05)
        assert second.try_lead()
        assert not first.try_lead()
        second.resign()
        assert first.try_lead()
    finally:
        first.resign()
        second.resign()


def test_file_election_one_leader(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite3-leader"
    first, second = FileElection(path), FileElection(path)
    assert first.try_lead() and not second.try_lead()
    assert path.read_text().strip() == str(os.getpid())
    first.resign()
    assert second.try_lead() and not first.try_lead()
    second.resign()


def test_sqlite_database_elects_by_its_file(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'service.sqlite3'}")
    try:
        election = election_for(db)
        assert isinstance(election, FileElection)
        assert election.path == tmp_path / "service.sqlite3-leader"
    finally:
        db.dispose()


def test_a_leader_runs_its_duties_only_while_leading(tmp_path: Path) -> None:
    from kizuna.background import PeriodicTask

    class Counter(PeriodicTask):
        thread_name = "test-duty"

        def __init__(self) -> None:
            super().__init__(interval_s=0.02)
            self.passes = 0

        def _pass(self) -> None:
            self.passes += 1

    path = tmp_path / "db-leader"
    a_duty, b_duty = Counter(), Counter()
    a = ClusterLeader(FileElection(path), [a_duty], interval_s=0.05)
    b = ClusterLeader(FileElection(path), [b_duty], interval_s=0.05)
    a.start()
    _eventually(lambda: a.leading and a_duty.passes > 3, timeout=5)
    b.start()
    time.sleep(0.3)
    assert not b.leading and b_duty.passes == 0
    a.stop()  # a clean stop frees the leadership: b takes over, a's duty stops
    stopped_at = a_duty.passes
    _eventually(lambda: b.leading and b_duty.passes > 3, timeout=5)
    assert a_duty.passes == stopped_at
    b.stop()


# -- a cluster of real instances -------------------------------------------------------------


def _eventually(condition: Callable[[], bool], *, timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - start
        assert elapsed < timeout, f"still not true after {elapsed:.1f} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _leader_pid(database_url: str) -> int | None:
    """The pid of the instance that leads, as the database says (not as the API says)."""
    if database_url.startswith("sqlite"):
        text = Path(database_url.removeprefix("sqlite:///") + "-leader").read_text().strip()
        return int(text) if text else None
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
            _lock_ids())]
    assert len(names) <= 1, names
    found = re.search(r"pid=(\d+)", names[0]) if names else None
    return int(found.group(1)) if found else None


def _count(db: Database, query: object) -> int:
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())  # type: ignore[call-overload]


@pytest.fixture(params=["postgresql", "sqlite"])
def cluster_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    return _fresh_postgres(request.getfixturevalue("postgres_server"))


def test_killing_the_leader_hands_its_duties_to_another_instance(
        chain_env: ChainEnv, tmp_path: Path, cluster_database: str) -> None:
    shared = dict(database_url=cluster_database, siwe_domain="kizuna.test",
                  siwe_uri="https://kizuna.test", follow_interval_s=FOLLOW_S,
                  anchor_interval_s=ANCHOR_S)
    servers = [ApiServer(settings=settings_for(chain_env, tmp_path, port=free_port(), **shared),
                         log_path=tmp_path / f"api-{i}.log") for i in range(3)]
    db = Database(cluster_database)
    access_log = chain_env.chain.access_log
    try:
        for server in servers:
            server.start()
        pids = {s.pid: s for s in servers}
        _eventually(lambda: _leader_pid(cluster_database) in pids, timeout=SLACK_S)
        leader = pids[_leader_pid(cluster_database)]  # type: ignore[index]
        others = [s for s in servers if s is not leader]
        http = httpx.Client(base_url=others[0].url, timeout=60)
        patient_signer, provider_signer = LocalKeySigner.generate(), LocalKeySigner.generate()
        patient = HttpPatient(signer=patient_signer, chain=chain_env.chain, http=http)
        patient.login()
        provider = HttpProvider(signer=provider_signer, chain=chain_env.chain, http=http)
        chain_env.add_provider(provider_signer, provider.keys.public_key.to_bytes())
        provider.login()
        sealed = patient.add(b"lab", label=LAB, content_type="text/plain")
        answer = patient.grant(provider.address, provider.keys.public_key, [LAB])
        assert answer.status_code == 200, answer.text

        # served by a follower instance, anchored by the leader
        assert provider.read(patient.address, sealed) == b"lab"
        # receipts not yet in a batch whose anchor transaction went through
        unanchored = select(func.count()).select_from(t.receipts.outerjoin(
            t.receipt_batches, t.receipts.c.batch_root == t.receipt_batches.c.root)).where(
            t.receipt_batches.c.tx_hash.is_(None))
        _eventually(lambda: _count(db, unanchored) == 0, timeout=ANCHOR_S + SLACK_S)

        leader.kill()  # SIGKILL: no clean-up, no resignation
        for _ in range(3):
            assert provider.read(patient.address, sealed) == b"lab"
        # another instance leads within one interval, and anchors what was served since
        took = _eventually(lambda: _leader_pid(cluster_database) in
                           {s.pid for s in others}, timeout=FOLLOW_S + SLACK_S)
        assert took < FOLLOW_S + SLACK_S
        _eventually(lambda: _count(db, unanchored) == 0,
                    timeout=FOLLOW_S + ANCHOR_S + SLACK_S)

        # the new leader's follower deletes the fragments of a grant revoked from the wallet
        chain_env.fund(patient.address)
        chain_env.chain.ledger.revoke(to_checksum_address(provider.address), patient.scope(LAB),
                                      signer=patient_signer)
        fragments = select(func.count()).select_from(t.kfrags).where(
            t.kfrags.c.patient == patient.address)
        _eventually(lambda: _count(db, fragments) == 0, timeout=FOLLOW_S + SLACK_S)
        assert provider.request_read(patient.address, sealed.record_id).status_code == 403

        # on chain: every receipt in exactly one batch, no batch anchored twice
        with db.read() as conn:
            batches = conn.execute(select(t.receipt_batches.c.root, t.receipt_batches.c.count,
                                          t.receipt_batches.c.tx_hash)).all()
            receipts = int(conn.execute(select(func.count()).select_from(t.receipts))
                           .scalar_one())
        assert receipts == 4 and all(b.tx_hash is not None for b in batches)
        on_chain, _ = access_log.batch_count(
            LocalKeySigner(dev_private_keys(4)[ANCHORER]).address)
        assert on_chain == len(batches)
        anchored = [access_log.batch_of(bytes(b.root)) for b in batches]
        assert all(a is not None for a in anchored)
        assert sorted(a.batch_index for a in anchored if a is not None) == list(range(on_chain))
        assert sum(a.count for a in anchored if a is not None) == receipts
        http.close()
    finally:
        for server in servers:
            server.stop()
        db.dispose()
