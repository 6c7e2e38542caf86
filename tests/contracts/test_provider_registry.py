"""ProviderRegistry: addProvider, suspendProvider, reinstateProvider, rotateUmbralKey, the views,
and the AccessControl role that guards them."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak
from ledger_harness import UMBRAL_KEY, UMBRAL_KEY_2, Actors, Bench, b32

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DEFAULT_ADMIN_ROLE = bytes(32)
REGISTRAR_ROLE = bytes(keccak(text="KIZUNA_REGISTRAR_ROLE"))
CREDENTIAL = b32("licence:unverified")


def test_registrarRole_isTheDocumentedConstant(bench: Bench, actors: Actors) -> None:
    registry = bench.registry.functions
    assert bytes(registry.REGISTRAR_ROLE().call()) == REGISTRAR_ROLE
    assert registry.hasRole(REGISTRAR_ROLE, actors.registrar).call() is True
    assert registry.hasRole(REGISTRAR_ROLE, actors.admin).call() is False
    assert registry.hasRole(DEFAULT_ADMIN_ROLE, actors.admin).call() is True
    assert bytes(registry.DEFAULT_ADMIN_ROLE().call()) == DEFAULT_ADMIN_ROLE
    assert bytes(registry.getRoleAdmin(REGISTRAR_ROLE).call()) == DEFAULT_ADMIN_ROLE


def test_supportsInterface_erc165AndAccessControl(bench: Bench) -> None:
    registry = bench.registry.functions
    assert registry.supportsInterface(bytes.fromhex("01ffc9a7")).call() is True
    assert registry.supportsInterface(bytes.fromhex("7965db0b")).call() is True
    assert registry.supportsInterface(bytes.fromhex("ffffffff")).call() is False


def test_addProvider_registersAnActiveProvider(bench: Bench, actors: Actors) -> None:
    when = bench.next_time()
    receipt = bench.tx(bench.registry.functions.addProvider(actors.unverified, UMBRAL_KEY_2,
                                                            CREDENTIAL), actors.registrar)
    assert bench.event_list(receipt) == [
        ("ProviderAdded", {"provider": actors.unverified, "registrar": actors.registrar,
                           "umbralPublicKey": UMBRAL_KEY_2, "credentialCommitment": CREDENTIAL}),
    ]
    registry = bench.registry.functions
    assert registry.isRegistered(actors.unverified).call() is True
    assert registry.isActiveProvider(actors.unverified).call() is True
    assert registry.providerOf(actors.unverified).call() == [UMBRAL_KEY_2, CREDENTIAL, True, when]


def test_views_ofAnUnknownProvider(bench: Bench, actors: Actors) -> None:
    registry = bench.registry.functions
    assert registry.isRegistered(actors.unverified).call() is False
    assert registry.isActiveProvider(actors.unverified).call() is False
    bench.call_reverts(registry.providerOf(actors.unverified), "ProviderRegistryUnknownProvider",
                       provider=actors.unverified)


@pytest.mark.parametrize("who", ["admin", "stranger", "provider", "anchorer"])
def test_addProvider_revertsForNonRegistrar(bench: Bench, actors: Actors, who: str) -> None:
    caller = getattr(actors, who)
    bench.reverts(bench.registry.functions.addProvider(actors.unverified, UMBRAL_KEY, CREDENTIAL),
                  caller, "AccessControlUnauthorizedAccount", account=caller,
                  neededRole=REGISTRAR_ROLE)
    assert bench.registry.functions.isRegistered(actors.unverified).call() is False


def test_addProvider_revertsWhenAlreadyRegistered(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.registry.functions.addProvider(actors.provider, UMBRAL_KEY_2, CREDENTIAL),
                  actors.registrar, "ProviderRegistryAlreadyRegistered", provider=actors.provider)
    bench.tx(bench.registry.functions.suspendProvider(actors.provider), actors.registrar)
    # Suspension does not make the address registrable again (no silent key swap).
    bench.reverts(bench.registry.functions.addProvider(actors.provider, UMBRAL_KEY_2, CREDENTIAL),
                  actors.registrar, "ProviderRegistryAlreadyRegistered", provider=actors.provider)


def test_addProvider_revertsForZeroAddress(bench: Bench, actors: Actors) -> None:
    bench.reverts(bench.registry.functions.addProvider(ZERO_ADDRESS, UMBRAL_KEY, CREDENTIAL),
                  actors.registrar, "ProviderRegistryInvalidProvider", provider=ZERO_ADDRESS)


@pytest.mark.parametrize(("key", "prefix"), [
    (b"", b"\x00"),
    (b"\x02" + bytes(31), b"\x02"),
    (b"\x03" + bytes(33), b"\x03"),
    (b"\x04" + bytes(32), b"\x04"),
    (b"\x00" + bytes(32), b"\x00"),
    (b"\x04" + bytes(64), b"\x04"),  # an uncompressed point
])
def test_addProvider_revertsForMalformedUmbralKey(bench: Bench, actors: Actors, key: bytes,
                                                  prefix: bytes) -> None:
    bench.reverts(bench.registry.functions.addProvider(actors.unverified, key, CREDENTIAL),
                  actors.registrar, "ProviderRegistryInvalidUmbralKey", length=len(key),
                  prefix=prefix)


def test_suspendProvider_andReinstateProvider(bench: Bench, actors: Actors) -> None:
    registry = bench.registry.functions
    registered_at = registry.providerOf(actors.provider).call()[3]
    receipt = bench.tx(registry.suspendProvider(actors.provider), actors.registrar)
    assert bench.event_list(receipt) == [
        ("ProviderSuspended", {"provider": actors.provider, "registrar": actors.registrar}),
    ]
    assert registry.isActiveProvider(actors.provider).call() is False
    assert registry.isRegistered(actors.provider).call() is True
    assert registry.providerOf(actors.provider).call()[2:] == [False, registered_at]
    receipt = bench.tx(registry.reinstateProvider(actors.provider), actors.registrar)
    assert bench.event_list(receipt) == [
        ("ProviderReinstated", {"provider": actors.provider, "registrar": actors.registrar}),
    ]
    assert registry.isActiveProvider(actors.provider).call() is True
    assert registry.providerOf(actors.provider).call()[2:] == [True, registered_at]


def test_suspendAndReinstate_revertWhenStatusUnchanged(bench: Bench, actors: Actors) -> None:
    registry = bench.registry.functions
    bench.reverts(registry.reinstateProvider(actors.provider), actors.registrar,
                  "ProviderRegistryStatusUnchanged", provider=actors.provider, active=True)
    bench.tx(registry.suspendProvider(actors.provider), actors.registrar)
    bench.reverts(registry.suspendProvider(actors.provider), actors.registrar,
                  "ProviderRegistryStatusUnchanged", provider=actors.provider, active=False)


def test_suspendAndReinstate_revertForUnknownProvider(bench: Bench, actors: Actors) -> None:
    registry = bench.registry.functions
    for fn in (registry.suspendProvider, registry.reinstateProvider):
        bench.reverts(fn(actors.unverified), actors.registrar, "ProviderRegistryUnknownProvider",
                      provider=actors.unverified)


@pytest.mark.parametrize("who", ["admin", "stranger", "provider"])
def test_suspendAndReinstate_revertForNonRegistrar(bench: Bench, actors: Actors,
                                                   who: str) -> None:
    caller = getattr(actors, who)
    registry = bench.registry.functions
    bench.reverts(registry.suspendProvider(actors.provider2), caller,
                  "AccessControlUnauthorizedAccount", account=caller, neededRole=REGISTRAR_ROLE)
    bench.tx(registry.suspendProvider(actors.provider2), actors.registrar)
    bench.reverts(registry.reinstateProvider(actors.provider2), caller,
                  "AccessControlUnauthorizedAccount", account=caller, neededRole=REGISTRAR_ROLE)


def test_rotateUmbralKey_replacesTheKeyEvenWhileSuspended(bench: Bench, actors: Actors) -> None:
    registry = bench.registry.functions
    receipt = bench.tx(registry.rotateUmbralKey(UMBRAL_KEY_2), actors.provider)
    assert bench.event_list(receipt) == [
        ("UmbralKeyRotated", {"provider": actors.provider, "umbralPublicKey": UMBRAL_KEY_2}),
    ]
    assert registry.providerOf(actors.provider).call()[:3] == [
        UMBRAL_KEY_2, bytes(keccak(text="licence")), True]
    bench.tx(registry.suspendProvider(actors.provider), actors.registrar)
    bench.tx(registry.rotateUmbralKey(UMBRAL_KEY), actors.provider)
    assert registry.providerOf(actors.provider).call()[:3] == [
        UMBRAL_KEY, bytes(keccak(text="licence")), False]
    # Another provider's entry is untouched.
    assert registry.providerOf(actors.provider2).call()[0] == UMBRAL_KEY


def test_rotateUmbralKey_revertsForUnregisteredCallerOrMalformedKey(bench: Bench,
                                                                   actors: Actors) -> None:
    registry = bench.registry.functions
    for caller in (actors.unverified, actors.registrar):
        bench.reverts(registry.rotateUmbralKey(UMBRAL_KEY), caller,
                      "ProviderRegistryUnknownProvider", provider=caller)
    bench.reverts(registry.rotateUmbralKey(b"\x05" + bytes(32)), actors.provider,
                  "ProviderRegistryInvalidUmbralKey", length=33, prefix=b"\x05")
    bench.reverts(registry.rotateUmbralKey(UMBRAL_KEY[:20]), actors.provider,
                  "ProviderRegistryInvalidUmbralKey", length=20, prefix=b"\x02")


def test_registrarRole_grantedAndRevokedByAdminOnly(bench: Bench, actors: Actors) -> None:
    registry = bench.registry.functions
    bench.reverts(registry.grantRole(REGISTRAR_ROLE, actors.stranger), actors.registrar,
                  "AccessControlUnauthorizedAccount", account=actors.registrar,
                  neededRole=DEFAULT_ADMIN_ROLE)
    receipt = bench.tx(registry.grantRole(REGISTRAR_ROLE, actors.stranger), actors.admin)
    assert bench.event_list(receipt) == [
        ("RoleGranted", {"role": REGISTRAR_ROLE, "account": actors.stranger,
                         "sender": actors.admin}),
    ]
    bench.tx(registry.addProvider(actors.unverified, UMBRAL_KEY, CREDENTIAL), actors.stranger)
    receipt = bench.tx(registry.revokeRole(REGISTRAR_ROLE, actors.stranger), actors.admin)
    assert [e.name for e in bench.events(receipt)] == ["RoleRevoked"]
    bench.reverts(registry.suspendProvider(actors.unverified), actors.stranger,
                  "AccessControlUnauthorizedAccount", account=actors.stranger,
                  neededRole=REGISTRAR_ROLE)
    bench.reverts(registry.renounceRole(REGISTRAR_ROLE, actors.stranger), actors.registrar,
                  "AccessControlBadConfirmation")
    bench.tx(registry.renounceRole(REGISTRAR_ROLE, actors.registrar), actors.registrar)
    assert registry.hasRole(REGISTRAR_ROLE, actors.registrar).call() is False


def test_constructor_withoutRegistrarHasNone(bench: Bench, actors: Actors) -> None:
    registry = bench.deploy_contract("ProviderRegistry", actors.admin, ZERO_ADDRESS)
    assert registry.functions.hasRole(REGISTRAR_ROLE, ZERO_ADDRESS).call() is False
    bench.reverts(registry.functions.addProvider(actors.unverified, UMBRAL_KEY, CREDENTIAL),
                  actors.admin, "AccessControlUnauthorizedAccount", account=actors.admin,
                  neededRole=REGISTRAR_ROLE)
    bench.tx(registry.functions.grantRole(REGISTRAR_ROLE, actors.admin), actors.admin)
    bench.tx(registry.functions.addProvider(actors.unverified, UMBRAL_KEY, CREDENTIAL),
             actors.admin)
