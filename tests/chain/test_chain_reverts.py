"""Revert decoding: every node's raw error shape becomes the same ContractReverted(name, args)."""

from __future__ import annotations

import pytest
from chainenv import Env, hardhat_env, scope
from eth_abi.abi import encode as abi_encode
from eth_tester.exceptions import TransactionFailed
from eth_utils.abi import function_signature_to_4byte_selector
from web3.exceptions import ContractCustomError, Web3RPCError

from kizuna.chain.artifacts import CONTRACT_NAMES, load_artifact
from kizuna.chain.eip712 import grant_typed_data
from kizuna.chain.relayer import Relayer, RelayRefused
from kizuna.chain.reverts import RevertDecoder, error_specs, revert_data_from
from kizuna.errors import ContractReverted

ZERO = "0x" + "00" * 20
PATIENT = "0x1111111111111111111111111111111111111111"


@pytest.fixture(scope="module")
def decoder() -> RevertDecoder:
    return RevertDecoder(load_artifact(n).abi_list for n in CONTRACT_NAMES)


def _custom(signature: str, types: list[str], values: list[object]) -> bytes:
    return bytes(function_signature_to_4byte_selector(signature)) + abi_encode(types, values)


NO_GRANT = _custom("ConsentLedgerNoGrant(address,address,bytes32)",
                   ["address", "address", "bytes32"], [PATIENT, ZERO, b"\x07" * 32])


def test_every_contract_error_is_known(decoder: RevertDecoder) -> None:
    declared = {s.name for n in CONTRACT_NAMES for s in error_specs(load_artifact(n).abi_list)}
    assert declared <= set(decoder.known_errors)
    # OpenZeppelin's errors are known even where an ABI does not list them.
    assert {"AccessControlUnauthorizedAccount", "ECDSAInvalidSignature",
            "InvalidAccountNonce"} <= set(decoder.known_errors)


def test_custom_error_carries_its_arguments_by_name(decoder: RevertDecoder) -> None:
    reverted = decoder.decode(NO_GRANT)
    assert reverted.name == "ConsentLedgerNoGrant"
    assert reverted.error_args == {"patient": PATIENT, "provider": ZERO,
                                   "scopeId": b"\x07" * 32}
    assert reverted.data == NO_GRANT
    assert "ConsentLedgerNoGrant(patient=0x1111" in str(reverted)


def test_builtin_errors(decoder: RevertDecoder) -> None:
    message = _custom("Error(string)", ["string"], ["nope"])
    assert decoder.decode(message).name == "Error"
    assert decoder.decode(message).error_args == {"message": "nope"}
    panic = decoder.decode(_custom("Panic(uint256)", ["uint256"], [0x11]))
    assert (panic.name, panic.error_args["code"]) == ("Panic", 0x11)
    assert "overflow" in panic.error_args["reason"]
    assert decoder.decode(b"").name == "EmptyRevert"
    unknown = decoder.decode(bytes.fromhex("deadbeef") + b"\x00" * 32)
    assert unknown.name == "UnknownError" and unknown.error_args == {"selector": "0xdeadbeef"}
    # A known selector with a body that does not decode is reported, not crashed on.
    broken = decoder.decode(NO_GRANT[:10])
    assert broken.name == "UnknownError"


def test_the_raw_shapes_of_every_node_decode_identically(decoder: RevertDecoder) -> None:
    anvil_style = ContractCustomError("0x" + NO_GRANT.hex(), data="0x" + NO_GRANT.hex())
    hardhat_style = Web3RPCError("reverted", rpc_response={"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32603, "message": "reverted with custom error",
        "data": {"message": "reverted", "data": "0x" + NO_GRANT.hex()}}})
    geth_style = Web3RPCError("reverted", rpc_response={"jsonrpc": "2.0", "id": 1, "error": {
        "code": 3, "message": "execution reverted", "data": "0x" + NO_GRANT.hex()}})
    tester_style = TransactionFailed(f"execution reverted: {NO_GRANT!r}")
    decoded = [decoder.from_exception(e) for e in
               (anvil_style, hardhat_style, geth_style, tester_style)]
    assert all(d is not None for d in decoded)
    assert {(d.name, tuple(d.error_args.items())) for d in decoded if d} == {
        ("ConsentLedgerNoGrant", (("patient", PATIENT), ("provider", ZERO),
                                  ("scopeId", b"\x07" * 32)))}
    # eth-tester decodes Error(string) itself: the reason still comes out as Error(message).
    reason = decoder.from_exception(TransactionFailed("execution reverted: too late"))
    assert reason is not None and reason.error_args == {"message": "too late"}
    # Not a revert at all: no decoding.
    assert revert_data_from(ValueError("nonce too low")) is None


# --- the same reverts from the real contracts, on eth-tester and anvil (and Hardhat below) ---


def _expect(call: object, name: str) -> ContractReverted:
    with pytest.raises(ContractReverted) as info:
        call()  # type: ignore[operator]
    assert info.value.name == name, str(info.value)
    return info.value


def _real_reverts(env: Env) -> dict[str, dict[str, object]]:
    ledger, registry, log = env.chain.ledger, env.chain.registry, env.chain.access_log
    patient, provider, stranger = env.new_signer(), env.new_signer(), env.new_signer()
    now = env.now()
    seen: dict[str, dict[str, object]] = {}

    e = _expect(lambda: ledger.grant(provider.address, scope("lab"), now - 1, signer=patient),
                "ConsentLedgerInvalidExpiry")
    assert e.error_args["expiresAt"] == now - 1 and e.error_args["currentTime"] >= now
    seen[e.name] = {"expiresAt": e.error_args["expiresAt"]}

    e = _expect(lambda: ledger.revoke(provider.address, scope("lab"), signer=patient),
                "ConsentLedgerNoGrant")
    assert e.error_args == {"patient": patient.address, "provider": provider.address,
                            "scopeId": scope("lab")}
    seen[e.name] = e.error_args

    e = _expect(lambda: ledger.grant(provider.address, scope("lab"), now + 99, signer=stranger,
                                     patient=patient.address), "ConsentLedgerUnauthorized")
    assert e.error_args == {"patient": patient.address, "caller": stranger.address}
    seen[e.name] = e.error_args

    e = _expect(lambda: registry.add_provider(provider.address, b"\x02" + b"\x01" * 32,
                                              b"\x00" * 32, signer=stranger),
                "AccessControlUnauthorizedAccount")
    assert e.error_args == {"account": stranger.address,
                            "neededRole": registry.registrar_role()}
    seen[e.name] = e.error_args

    e = _expect(lambda: registry.add_provider(provider.address, b"\x04" + b"\x01" * 32,
                                              b"\x00" * 32, signer=env.admin),
                "ProviderRegistryInvalidUmbralKey")
    assert e.error_args == {"length": 33, "prefix": b"\x04"}
    seen[e.name] = e.error_args

    e = _expect(lambda: log.anchor(b"\x00" * 32, 1, now - 10, now - 5, signer=env.admin),
                "AccessLogInvalidRoot")
    seen[e.name] = e.error_args

    # A view reverting: decoded the same way (and the agent turns "unknown" into None).
    assert registry.provider_of(stranger.address) is None
    e = _expect(lambda: registry._view("providerOf", stranger.address),
                "ProviderRegistryUnknownProvider")
    seen[e.name] = e.error_args

    # A relayed signature that would revert: refused with the decoded reason.
    typed = grant_typed_data(env.chain.ledger_domain, patient=patient.address,
                             provider=provider.address, scope_id=scope("lab"),
                             expires_at=now + 3600, nonce=0, deadline=now - 1)
    from kizuna.chain.eip712 import SignedAction

    action = SignedAction(typed, patient.sign_typed_data(typed))
    with pytest.raises(RelayRefused) as refused:
        Relayer(env.chain, stranger).relay(action)
    assert refused.value.name == "ConsentLedgerSignatureExpired"
    assert refused.value.error_args["deadline"] == now - 1
    seen[refused.value.name] = {"deadline": now - 1}
    return seen


def test_contract_reverts_decode_with_arguments(env: Env) -> None:
    seen = _real_reverts(env)
    assert len(seen) == 8


@pytest.mark.anvil
def test_eth_tester_and_anvil_report_the_same_errors(tester_env: Env, anvil_env: Env) -> None:
    tester, anvil = _real_reverts(tester_env), _real_reverts(anvil_env)
    assert tester.keys() == anvil.keys()
    # Argument *names* are identical; values differ only by the fresh addresses of each run.
    assert {k: sorted(v) for k, v in tester.items()} == {k: sorted(v) for k, v in anvil.items()}


@pytest.mark.node
def test_hardhat_node_reports_the_same_errors(hardhat_node: str, tester_env: Env) -> None:
    hardhat, tester = _real_reverts(hardhat_env(hardhat_node)), _real_reverts(tester_env)
    assert {k: sorted(v) for k, v in hardhat.items()} == {k: sorted(v) for k, v in tester.items()}
