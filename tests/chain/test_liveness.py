"""The ledger's grant liveness rule (kizuna/chain/liveness.py), once, in each of its spellings.

The predicate ``grant_live``, the event replay ``ConsentReplay`` (the audit's ``access_at``, the
FHIR export's ``Consent`` statuses) and the index's SQL (``LIVE_SQL`` through the real
projections and queries) must agree with each other on any history; the contract itself is the
oracle of ``grant_live`` in tests/contracts/test_consent_stateful.py (through its model). The page's
copy is web/test/consent.test.ts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing

from hypothesis import given, settings
from hypothesis import strategies as st

from kizuna.chain.index import projections, queries
from kizuna.chain.index.events import DecodedEvent
from kizuna.chain.index.schema import ddl
from kizuna.chain.liveness import ConsentReplay, GrantEnd, grant_live
from kizuna.types import checked_address

PATIENT = checked_address("patient", "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65")
PROVIDER = checked_address("provider", "0x976EA74026E726554dB657fA54763abd0C3a0aa9")
OTHER = checked_address("other", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc")
S1, S2 = b"\x11" * 32, b"\x22" * 32

Step = tuple[str, int, dict[str, object]]
"""(event name, block, arguments beyond the pair)."""


def _events(steps: list[Step], provider: str = PROVIDER) -> Iterator[DecodedEvent]:
    for log_index, (name, block, extra) in enumerate(steps):
        args = {"patient": PATIENT, "provider": provider, **extra}
        yield DecodedEvent("ConsentLedger", "0x0", name, args, block, b"", bytes([log_index]) * 32,
                           log_index, (), b"")


def _replay(steps: list[Step]) -> ConsentReplay:
    replay = ConsentReplay()
    for e in _events(steps):
        replay.add(e.name, e.args, block_number=e.block_number, log_index=e.log_index,
                   tx_hash=e.tx_hash)
    return replay


def _indexed(steps: list[Step]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    for statement in ddl("sqlite"):
        db.execute(statement)
    with closing(db.cursor()) as cur:
        projections.apply(cur, _events(steps))
    return db


def _grant(block: int, scope: bytes, expires: int) -> Step:
    return ("AccessGranted", block, {"scopeId": scope, "expiresAt": expires})


def _revoke(block: int, scope: bytes) -> Step:
    return ("AccessRevoked", block, {"scopeId": scope})


def _revoke_all(block: int) -> Step:
    return ("AllAccessRevoked", block, {})


def test_the_predicate() -> None:
    assert grant_live(granted_block=5, expires_at=100, revoked_all_block=4, now=99)
    assert not grant_live(granted_block=5, expires_at=100, revoked_all_block=4, now=100)
    assert not grant_live(granted_block=5, expires_at=100, revoked_all_block=5, now=0)
    assert grant_live(granted_block=1, expires_at=1, revoked_all_block=0, now=0)


def test_revoke_all_wins_inside_its_block_whatever_the_order() -> None:
    for steps in ([_grant(5, S1, 1000), _revoke_all(5)], [_revoke_all(5), _grant(5, S1, 1000)]):
        replay = _replay(steps)
        at = replay.grant_at(PATIENT, PROVIDER, S1, 9, now=10)
        assert (at.live, at.revoked_all_block) == (False, 5)
        assert replay.end_of((PATIENT, PROVIDER, S1), 0) == GrantEnd(
            "revoke-all-same-block", 5, replay.revoke_all_blocks(PATIENT, PROVIDER)[0][1])
        with closing(_indexed(steps)) as db:
            assert not queries.has_access(db, PATIENT, PROVIDER, S1, now=10)
    later = _replay([_revoke_all(5), _grant(6, S1, 1000)])
    assert later.grant_at(PATIENT, PROVIDER, S1, 6, now=10).live
    assert later.end_of((PATIENT, PROVIDER, S1), 0) is None


def test_re_grant_after_revoke_and_expiry() -> None:
    steps = [_grant(1, S1, 1000), _grant(1, S2, 50), _revoke(3, S1), _grant(7, S1, 2000)]
    replay = _replay(steps)
    live = [replay.grant_at(PATIENT, PROVIDER, S1, b, now=10).live for b in (0, 1, 3, 6, 7)]
    assert live == [False, True, False, False, True]
    assert replay.end_of((PATIENT, PROVIDER, S1), 0) is not None
    assert replay.end_of((PATIENT, PROVIDER, S1), 0).kind == "revoke"  # type: ignore[union-attr]
    # Expiry: live while expires_at > the block's time, never at it.
    assert replay.grant_at(PATIENT, PROVIDER, S2, 2, now=49).live
    assert not replay.grant_at(PATIENT, PROVIDER, S2, 2, now=50).live
    assert replay.denials_after(PATIENT, PROVIDER, S1, 1) == [(3, bytes([2]) * 32)]
    with closing(_indexed(steps)) as db:
        assert queries.has_access(db, PATIENT, PROVIDER, S1, now=10)
        assert [g.scope_id for g in queries.grants_to(db, PROVIDER, now=50)] == [S1]


def test_emergency_access_until_closed_or_revoke_all() -> None:
    replay = _replay([("EmergencyAccessOpened", 5, {"until": 1000}),
                      ("EmergencyAccessClosed", 8, {}),
                      ("EmergencyAccessOpened", 12, {"until": 2000}),
                      _revoke_all(14)])
    assert [replay.emergency_until(PATIENT, PROVIDER, b) for b in (4, 5, 8, 12, 14)] == [
        0, 1000, 0, 2000, 0]


_STEP = st.one_of(
    st.tuples(st.just("grant"), st.sampled_from([S1, S2]), st.integers(1, 60)),
    st.tuples(st.just("revoke"), st.sampled_from([S1, S2]), st.just(0)),
    st.tuples(st.just("revoke-all"), st.just(S1), st.just(0)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_STEP, st.booleans()), max_size=12), st.integers(0, 80))
def test_replay_index_and_predicate_agree(moves: list[tuple[tuple[str, bytes, int], bool]],
                                          now: int) -> None:
    """Any history the chain accepts (a revoke needs a stored grant): the index's live grants
    at the head are the replay's, and each is ``grant_live`` of the stored grant."""
    steps: list[Step] = []
    block, stored = 1, set()
    for (kind, scope, expires), next_block in moves:
        block += int(next_block)
        if kind == "grant":
            steps.append(_grant(block, scope, expires))
            stored.add(scope)
        elif kind == "revoke" and scope in stored:
            steps.append(_revoke(block, scope))
            stored.discard(scope)
        elif kind == "revoke-all":
            steps.append(_revoke_all(block))
    replay = _replay(steps)
    with closing(_indexed(steps)) as db:
        for scope in (S1, S2):
            at = replay.grant_at(PATIENT, PROVIDER, scope, block, now=now)
            assert queries.has_access(db, PATIENT, PROVIDER, scope, now=now) == at.live
            if at.grant is not None and at.grant.expires_at is not None:
                assert at.live == grant_live(granted_block=at.grant.block_number,
                                             expires_at=at.grant.expires_at,
                                             revoked_all_block=at.revoked_all_block, now=now)
        index_live = {g.scope_id for g in queries.grants_of(db, PATIENT, now=now, live_only=True)}
        assert index_live == {s for s in (S1, S2)
                              if replay.grant_at(PATIENT, PROVIDER, s, block, now=now).live}
        # Another provider's pair is untouched by this pair's history.
        assert not queries.has_access(db, PATIENT, OTHER, S1, now=now)
