"""The event index's role queries: provider activity (``ProviderRegistry``) and AccessControl
roles (``RoleGranted`` / ``RoleRevoked`` of ``ProviderRegistry`` and ``AccessLog``), at the head,
agreeing with the contracts' own views; and an index file made before roles were projected is
brought up to date from its raw logs when opened."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainenv import Env, scope
from eth_utils.crypto import keccak

from kizuna.chain.agents.access_log import AUDITOR_ROLE
from kizuna.chain.agents.registry import REGISTRAR_ROLE
from kizuna.chain.index import EventIndex, FreshIndex, StaleRead
from kizuna.chain.models import ContractCall
from kizuna.chain.signers import LocalKeySigner
from kizuna.errors import ChainError

UMBRAL = b"\x02" + b"\x44" * 32
AUDITOR = bytes(keccak(text="KIZUNA_AUDITOR_ROLE"))
REGISTRAR = bytes(keccak(text="KIZUNA_REGISTRAR_ROLE"))


def _role_call(env: Env, contract: str, function: str, role: bytes, account: str,
               signer: LocalKeySigner) -> None:
    """``grantRole`` / ``revokeRole`` / ``renounceRole`` on ``contract``, sent by ``signer``."""
    target = env.chain.contract(contract)
    data = target.encode_abi(function, args=[role, account])
    env.chain.sender.transact(ContractCall(to=target.address, data=bytes.fromhex(data[2:])),
                              signer)


def _has_role(env: Env, contract: str, role: bytes, account: str) -> bool:
    return bool(env.chain.contract(contract).functions.hasRole(role, account).call())


def test_roles_and_provider_activity_follow_the_chain(env: Env) -> None:
    registry = env.chain.registry
    doctor, auditor, registrar = env.new_signer(), env.new_signer(), env.new_signer()
    fresh = FreshIndex(env.chain, EventIndex.for_chain(env.chain))

    # The constants the service reads roles with are the contracts' own ids.
    assert (REGISTRAR, AUDITOR) == (REGISTRAR_ROLE, AUDITOR_ROLE) == (
        registry.registrar_role(), env.chain.access_log.auditor_role())
    # The deployment's own grants (registrar, anchorer, admin) are indexed too.
    assert fresh.has_role("ProviderRegistry", REGISTRAR, env.admin.address)
    assert not fresh.provider_active(doctor.address)  # never registered

    registry.add_provider(doctor.address, UMBRAL, scope("licence"), signer=env.admin)
    _role_call(env, "AccessLog", "grantRole", AUDITOR, auditor.address, env.admin)
    _role_call(env, "ProviderRegistry", "grantRole", REGISTRAR, registrar.address, env.admin)
    standing = fresh.standing(doctor.address)
    assert standing.provider_active and standing.block.number == env.w3.eth.block_number
    assert fresh.has_role("AccessLog", AUDITOR, auditor.address)
    assert not fresh.has_role("ProviderRegistry", AUDITOR, auditor.address)  # per contract
    assert fresh.has_role("ProviderRegistry", REGISTRAR, registrar.address)
    assert fresh.index.role_holders("AccessLog", AUDITOR) == [auditor.address]

    # The new registrar suspends the doctor; the admin revokes the auditor; the registrar
    # renounces its own role. Each is seen by the next fresh read, as the contracts say.
    registry.suspend_provider(doctor.address, signer=registrar)
    assert not fresh.provider_active(doctor.address)
    assert not registry.is_active_provider(doctor.address)
    _role_call(env, "AccessLog", "revokeRole", AUDITOR, auditor.address, env.admin)
    assert not fresh.has_role("AccessLog", AUDITOR, auditor.address)
    _role_call(env, "ProviderRegistry", "renounceRole", REGISTRAR, registrar.address, registrar)
    standing = fresh.standing(registrar.address)
    assert not standing.has_role("ProviderRegistry", REGISTRAR)
    assert standing.roles == frozenset()
    registry.reinstate_provider(doctor.address, signer=env.admin)
    assert fresh.provider_active(doctor.address)

    for account in (doctor.address, auditor.address, registrar.address, env.admin.address):
        for contract, role in (("AccessLog", AUDITOR), ("ProviderRegistry", REGISTRAR)):
            assert fresh.has_role(contract, role, account) == _has_role(env, contract, role,
                                                                        account)
        assert fresh.provider_active(account) == registry.is_active_provider(account)


def test_questions_about_another_block_than_the_head_are_refused(env: Env) -> None:
    index = EventIndex.for_chain(env.chain)
    doctor = env.new_signer()
    env.chain.registry.add_provider(doctor.address, UMBRAL, scope("l"), signer=env.admin)
    earlier = index.sync()
    env.chain.registry.suspend_provider(doctor.address, signer=env.admin)
    head = index.sync()
    assert not index.provider_active(doctor.address, at=head)
    # The projections hold the head's state: "was it active at the earlier block?" cannot be
    # answered from them, and a block the index has not reached either.
    with pytest.raises(StaleRead):
        index.provider_active(doctor.address, at=earlier)
    env.mine()
    ahead = env.chain.head()
    with pytest.raises(ChainError, match="sync first"):
        index.has_role("AccessLog", AUDITOR, doctor.address, at=ahead)


def test_an_index_made_before_roles_were_projected_is_replayed_on_open(
        env: Env, tmp_path: Path) -> None:
    auditor = env.new_signer()
    _role_call(env, "AccessLog", "grantRole", AUDITOR, auditor.address, env.admin)
    path = tmp_path / "index.sqlite3"
    with EventIndex.for_chain(env.chain, path) as index:
        index.sync()
        # What an index file written by the previous projection set looks like: role events
        # in raw_logs only, no rows in roles, the old list of projected events.
        index.db.execute("DELETE FROM roles")
        index.db.execute("UPDATE index_meta SET value = 'older' WHERE key = 'projected'")
        assert not index.has_role("AccessLog", AUDITOR, auditor.address)
    with EventIndex.for_chain(env.chain, path) as index:
        assert index.has_role("AccessLog", AUDITOR, auditor.address)
        fresh = EventIndex.for_chain(env.chain)
        fresh.sync(to_block=index.last_block)
        assert index.dump() == fresh.dump()
        fresh.close()
