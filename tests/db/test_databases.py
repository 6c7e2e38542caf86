"""The same service core on SQLite and on PostgreSQL (a throwaway server started here): reads,
replays, two instances with their own connections on one database, concurrent readers and
concurrent anchorers (every receipt in exactly one anchored batch)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from chainenv import _eth_tester_env
from harness import Stack, make_stack
from together import processes_at_once, run_together

from kizuna.db import Database
from kizuna.errors import ConfigError
from kizuna.receipts.anchorer import Anchorer
from kizuna.receipts.request import ReplayedRequest
from kizuna.services.read import serve_read


@pytest.fixture(params=["sqlite", "postgresql"])
def any_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        from pgserver import fresh_database

        url = fresh_database(request.getfixturevalue("postgres_url"))
    made = make_stack(_eth_tester_env(), tmp_path, url)
    yield made
    made.db.dispose()


def test_reads_on_two_instances_with_their_own_connections(any_stack: Stack) -> None:
    stack = any_stack
    assert stack.db.dialect in ("sqlite", "postgresql")
    patient, provider = stack.party(), stack.provider()
    record = stack.add_record(patient)
    second_db = Database.open(stack.db.url)
    try:
        other = stack.second_context(second_db)
        stack.grant(patient, provider, ctx=other)
        request, signature = stack.request(provider, patient, record)
        answer = serve_read(stack.ctx, request=request, signature=signature)
        assert stack.open(provider, answer) == record.plaintext
        with pytest.raises(ReplayedRequest):
            serve_read(other, request=request, signature=signature)

        errors: list[BaseException] = []
        served: list[int] = []

        def reader(ctx) -> None:  # type: ignore[no-untyped-def]
            try:
                for _ in range(10):
                    r, s = stack.request(provider, patient, record, ctx=ctx)
                    served.append(serve_read(ctx, request=r, signature=s).receipt_seq)
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=reader, args=(c,))
                   for c in (stack.ctx, other) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert len(served) == len(set(served)) == 80
        assert other.receipts.count() == 81

        # Two anchorers, one per instance, at once: each receipt lands in exactly one batch.
        anchorers = [Anchorer(db=stack.db, chain=stack.chain, signer=stack.env.admin),
                     Anchorer(db=second_db, chain=stack.chain, signer=stack.env.admin)]
        results: list[int] = []
        run = [threading.Thread(target=lambda a=a: results.extend(
            b.count for b in a.run_once())) for a in anchorers]
        for thread in run:
            thread.start()
        for thread in run:
            thread.join(60)
        assert sum(results) == 81
        assert stack.ctx.receipts.count(anchored=False) == 0
        assert stack.chain.access_log.batch_count(stack.env.admin.address)[0] == len(results)
        for receipt in stack.ctx.receipts.select(limit=100):
            proof = stack.ctx.receipts.proof(receipt.request.request_id)
            assert proof is not None
            assert stack.chain.access_log.verify_receipt(proof.batch.root, proof.receipt.leaf,
                                                         list(proof.proof))
    finally:
        second_db.dispose()


def test_kfrags_and_follower_on_each_database(any_stack: Stack) -> None:
    from kizuna.services.follower import IndexFollower

    stack = any_stack
    patient, provider = stack.party(), stack.provider()
    scope_id = stack.grant(patient, provider, shares=3, threshold=2)
    assert stack.ctx.kfrags.count(patient=patient.address) == 3
    stack.chain.ledger.revoke(provider.address, scope_id, signer=patient.signer)
    assert len(IndexFollower(stack.ctx).tick().deleted) == 1
    assert stack.ctx.kfrags.count(patient=patient.address) == 0


def test_bad_database_urls_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported"):
        Database("mysql://u:secret@localhost/x")
    with pytest.raises(ConfigError) as caught:
        Database.open("postgresql://kizuna:secret@127.0.0.1:1/none")
    assert "secret" not in str(caught.value)
    memory = Database.open("sqlite://")
    assert memory.dialect == "sqlite"
    memory.dispose()


def test_a_database_gone_away_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    from pgserver import PostgresServer, fresh_database, postgres_available

    from kizuna.errors import DatabaseUnavailable, StoreUnavailable
    from kizuna.receipts.store import ReceiptStore

    if postgres_available():
        pytest.skip(postgres_available())
    server = PostgresServer(tmp_path).start()
    try:
        db = Database.open(fresh_database(server.url))
        store = ReceiptStore(db)
        assert store.count() == 0
    finally:
        server.stop()
    with pytest.raises(DatabaseUnavailable, match="unavailable") as caught:
        store.count()
    assert isinstance(caught.value, StoreUnavailable)
    db.dispose()


def test_in_memory_sqlite_is_safe_across_threads() -> None:
    from sqlalchemy import func, insert, select

    from kizuna.db import schema

    db = Database.open("sqlite://")

    def work(i: int) -> None:
        for j in range(30):
            with db.write() as conn:
                conn.execute(insert(schema.siwe_nonces).values(nonce=f"{i}-{j}", issued_at=1))
            with db.read() as conn:
                conn.execute(select(func.count()).select_from(schema.siwe_nonces)).one()

    errors = run_together(work, 8, timeout=30)
    assert not errors, errors
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(schema.siwe_nonces)).scalar_one() \
            == 240
    db.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_instances_starting_together_on_a_fresh_database_all_open_it(
        dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Service instances started at once create the schema one at a time (SQLite answered the
    second "database is locked" at once; PostgreSQL can fail on a type created twice): three
    fresh databases, five processes opening each at the same moment."""
    if dialect == "sqlite":
        urls = [f"sqlite:///{tmp_path / f'fresh-{round_}.db'}" for round_ in range(3)]
    else:
        from pgserver import fresh_database

        urls = [fresh_database(request.getfixturevalue("postgres_url")) for _ in range(3)]
    done = processes_at_once("from kizuna.db import Database",
                             "Database.open(target).dispose()", urls, processes=5, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for url in urls:
        database = Database.open(url)
        try:
            with database.read() as connection:
                tables = connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table'" if dialect == "sqlite"
                    else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").all()
            assert {"receipts", "sessions"} <= {t[0] for t in tables}
        finally:
            database.dispose()
