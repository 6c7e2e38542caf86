"""Issue 15, finding 2: key fragments follow the chain, whoever changes it.

Against the real API (``kizuna serve`` under uvicorn, its own SQLite, a real anvil): consent is
ended on chain *without the API* -- a revoke or a revokeAll sent from the patient's wallet, a
grant that simply expires, an emergency access the patient closes -- and the service must delete
the key fragments it holds for it within one follow interval (the index follower the API runs)
and refuse the read. Before the fix nothing started the follower: every fragment stayed.

The break-glass attack: a patient whose emergency kit holds only vital signs, a provider whose
grant on Condition expired; the provider opens an emergency access and asks for a Condition
record. Before the fix the proxy served it with the expired grant's leftover fragments (and the
audit counted it as a valid emergency read); now a break-glass read is served with the kit's
fragments only, and a scope outside the kit is refused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from apienv import ChainEnv, own_module_settings
from participants import HttpPatient, HttpProvider, hx

from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings

if TYPE_CHECKING:
    from adversarial_world import World

pytestmark = pytest.mark.anvil

FOLLOW_S = 1.0
"""The API's follow interval in these tests (``follow_interval_s``)."""

SLACK_S = 5.0
"""What a follower pass itself may take on a busy two-core machine (sync, look-ups, delete)."""

CONDITION = "Condition"
LAB = "Observation:laboratory"
VITALS = "Observation:vital-signs"


SHARED_STACK = True
"""A deployment and an API of the module's own (its follow interval, ``module_settings``;
tests/api/apienv.py, shares_stack): each test has its own world (patients, provider,
wallets) and counts only its own pairs' fragments."""


@pytest.fixture(scope="module")
def module_settings(module_chain_env: ChainEnv,
                    tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_module_settings(module_chain_env, tmp_path_factory, follow_interval_s=FOLLOW_S)


def _fragments(settings: Settings, patient: str, provider: str,
               scope: bytes | None = None) -> int:
    """Key fragment rows the service's database holds (read straight from its SQLite file)."""
    path = settings.database_url.removeprefix("sqlite:///")
    query = "SELECT COUNT(*) FROM kfrags WHERE patient = ? AND provider = ?"
    args: tuple[Any, ...] = (patient, provider)
    if scope is not None:
        query += " AND scope_id = ?"
        args += (bytes(scope),)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute(query, args).fetchone()[0])


def _within_one_interval(condition: Callable[[], bool]) -> float:
    """Seconds until ``condition`` held (polled); fails past one interval plus a pass's time."""
    start = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - start
        assert elapsed < FOLLOW_S + SLACK_S, f"still not true after {elapsed:.1f} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _wallet(world: World, who: HttpPatient | HttpProvider) -> LocalKeySigner:
    """``who``'s own wallet, funded: it sends its transactions itself, not through the API."""
    world.env.fund(who.address)
    return who.signer


def _refused(world: World, patient: HttpPatient, label: str) -> int:
    answer = world.provider.request_read(patient.address,
                                         world.records[patient.address][label].record_id)
    return answer.status_code


def _short_grant(world: World, patient: HttpPatient, label: str, seconds: int = 6) -> int:
    """Grant ``label`` to the provider through the API for ``seconds`` of chain time; its end.
    A block is mined first so that the head's time (the grant's start) is now."""
    world.env.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    provider = world.provider
    answer = patient.grant(provider.address, provider.keys.public_key, [label],
                           expires_in=seconds)
    assert answer.status_code == 200, answer.text
    grant = world.env.chain.ledger.grant_of(patient.address, provider.address,
                                            patient.scope(label))
    assert grant is not None and grant.live
    return grant.expires_at


def _mine_after(world: World, timestamp: int) -> None:
    """Wait until the wall clock passes ``timestamp``, then mine a block (anvil mines on demand:
    chain time moves with blocks)."""
    while time.time() <= timestamp:
        time.sleep(0.1)
    world.env.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def test_a_revoke_sent_from_the_wallet_deletes_the_fragments(world: World) -> None:
    alice, provider = world.alice, world.provider
    condition, lab = alice.scope(CONDITION), alice.scope(LAB)
    assert provider.read(alice.address, world.records[alice.address][CONDITION])
    assert _fragments(world_settings(world), alice.address, provider.address, condition) == 1
    world.env.chain.ledger.revoke(provider.address, condition, signer=_wallet(world, alice))
    _within_one_interval(lambda: _fragments(world_settings(world), alice.address,
                                            provider.address, condition) == 0)
    assert _refused(world, alice, CONDITION) == 403
    # the grant that is still live keeps its fragments and its reads
    assert _fragments(world_settings(world), alice.address, provider.address, lab) == 1
    assert provider.read(alice.address, world.records[alice.address][LAB])


def test_a_revoke_all_sent_from_the_wallet_deletes_every_fragment_of_the_pair(
        world: World) -> None:
    alice, bob, provider = world.alice, world.bob, world.provider
    assert _fragments(world_settings(world), alice.address, provider.address) == 2
    world.env.chain.ledger.revoke_all(provider.address, signer=_wallet(world, alice))
    _within_one_interval(
        lambda: _fragments(world_settings(world), alice.address, provider.address) == 0)
    assert _refused(world, alice, CONDITION) == 403 and _refused(world, alice, LAB) == 403
    assert _fragments(world_settings(world), bob.address, provider.address) == 1  # not bob's
    assert provider.read(bob.address, world.records[bob.address][VITALS])


def test_an_expired_grant_loses_its_fragments(world: World) -> None:
    bob, provider = world.bob, world.provider
    expires_at = _short_grant(world, bob, CONDITION)
    condition = bob.scope(CONDITION)
    assert provider.read(bob.address, world.records[bob.address][CONDITION])
    _mine_after(world, expires_at)
    _within_one_interval(lambda: _fragments(world_settings(world), bob.address,
                                            provider.address, condition) == 0)
    assert _refused(world, bob, CONDITION) == 403
    assert provider.read(bob.address, world.records[bob.address][VITALS])  # still granted


def _leave_kit(patient: HttpPatient, provider: HttpProvider, labels: list[str]) -> None:
    ids = [patient.scope(label) for label in labels]
    answer = patient.post("/patient/emergency-kits", {
        "provider": provider.address,
        "kfrags": {hx(sid): [hx(k.to_bytes()) for k in patient.keys.kfrags_for(
            sid, provider.keys.public_key, threshold=1, shares=1)] for sid in ids}})
    assert answer.status_code == 200, answer.text


def _break_glass(world: World, patient: HttpPatient, provider: HttpProvider) -> None:
    """The patient allows break-glass and the provider opens it, both from their wallets; the
    provider confirms it to the API as the web page does (the kit's hand-over)."""
    ledger = world.env.chain.ledger
    ledger.set_emergency_policy(True, 3600, signer=_wallet(world, patient))
    opened = ledger.open_emergency_access(patient.address, 600, 3,
                                          signer=_wallet(world, provider))
    answer = provider.post("/wallet/confirm/break-glass",
                           {"patient": patient.address, "tx_hash": hx(opened.tx_hash)})
    assert answer.status_code == 200, answer.text


def test_break_glass_never_serves_a_scope_outside_the_kit(world: World) -> None:
    """The attack of the issue: kit = vital signs only, an expired grant on Condition, break-glass
    open: the Condition record is refused (before: served with the expired grant's fragments)."""
    bob, provider = world.bob, world.provider
    expires_at = _short_grant(world, bob, CONDITION)
    world.env.chain.ledger.revoke(provider.address, bob.scope(VITALS),
                                  signer=_wallet(world, bob))  # vitals: by the kit only
    _leave_kit(bob, provider, [VITALS])
    _mine_after(world, expires_at)
    _break_glass(world, bob, provider)
    assert _refused(world, bob, CONDITION) == 403  # at once, whatever the follower did yet
    assert provider.read(bob.address, world.records[bob.address][VITALS])  # the kit serves
    _within_one_interval(lambda: _fragments(world_settings(world), bob.address,
                                            provider.address) == 0)
    assert _refused(world, bob, CONDITION) == 403
    assert provider.read(bob.address, world.records[bob.address][VITALS])
    assert _refused(world, bob, LAB) == 403  # never granted, not in the kit


def test_an_emergency_access_closed_from_the_wallet_leaves_no_fragments(world: World) -> None:
    alice = world.alice
    medic = HttpProvider(signer=LocalKeySigner.generate(), chain=world.env.chain,
                         http=world.http)
    world.env.add_provider(medic.signer, medic.keys.public_key.to_bytes())
    medic.login()
    _leave_kit(alice, medic, [VITALS])
    _break_glass(world, alice, medic)
    vitals = world.records[alice.address][VITALS]
    assert medic.read(alice.address, vitals)
    world.env.chain.ledger.close_emergency_access(alice.address, medic.address,
                                                  signer=_wallet(world, alice))
    _within_one_interval(
        lambda: _fragments(world_settings(world), alice.address, medic.address) == 0)
    assert medic.request_read(alice.address, vitals.record_id).status_code == 403


def world_settings(world: World) -> Settings:
    return world.server.settings
