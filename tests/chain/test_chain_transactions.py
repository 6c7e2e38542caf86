"""Transactions: nonces under concurrency, gas margin, receipts, confirmations, node errors."""

from __future__ import annotations

import math
import threading
from dataclasses import replace

import pytest
from chainenv import Env, _anvil_env, scope
from eth_account import Account
from hexbytes import HexBytes
from web3.exceptions import Web3RPCError

from kizuna.chain.connection import connect
from kizuna.chain.localnode import LocalNode, free_port
from kizuna.chain.models import ContractCall
from kizuna.chain.reverts import RevertDecoder
from kizuna.chain.signers import LocalKeySigner
from kizuna.chain.transactions import (
    NonceTooHigh,
    TransactionReverted,
    TransactionSender,
    TxPolicy,
    classify,
)
from kizuna.errors import (
    InsufficientFunds,
    NodeUnreachable,
    NonceTooLow,
    TransactionTimeout,
    WrongChain,
)


def _grants_in_threads(env: Env, signers: list[LocalKeySigner], threads_per_signer: int,
                       per_thread: int) -> list[BaseException]:
    ledger, provider = env.chain.ledger, env.new_signer(funded=False)
    expires = env.now() + 86_400
    errors: list[BaseException] = []

    def work(signer: LocalKeySigner, thread: int) -> None:
        try:
            for k in range(per_thread):
                ledger.grant(provider.address, scope(f"{signer.address}-{thread}-{k}"), expires,
                             signer=signer)
        except BaseException as exc:  # collected and asserted on by the test thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(s, t))
               for s in signers for t in range(threads_per_signer)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return errors


def _assert_contiguous_nonces(env: Env, signer: LocalKeySigner, count: int) -> None:
    assert env.w3.eth.get_transaction_count(signer.address) == count
    nonces = []
    latest = env.w3.eth.block_number
    for number in range(latest + 1):
        for tx in env.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == signer.address:
                nonces.append(tx["nonce"])
    assert sorted(nonces) == list(range(count))


# Concurrency runs against anvil only: py-evm (eth-tester) is not thread-safe itself.
@pytest.mark.anvil
def test_two_signers_and_threads_of_one_signer_never_collide(fresh_anvil: LocalNode) -> None:
    env = _anvil_env(fresh_anvil)
    first, second = env.new_signer(), env.new_signer()
    # A second signer object of the *same* key, used concurrently with the first.
    first_again = LocalKeySigner(first._account.key)
    errors = _grants_in_threads(env, [first, second, first_again], threads_per_signer=3,
                                per_thread=4)
    assert errors == []
    _assert_contiguous_nonces(env, first, 2 * 3 * 4)
    _assert_contiguous_nonces(env, second, 3 * 4)


def test_a_nonce_used_elsewhere_is_resynchronised(env: Env) -> None:
    patient, provider = env.new_signer(), env.new_signer(funded=False)
    ledger, expires = env.chain.ledger, env.now() + 3600
    ledger.grant(provider.address, scope("a"), expires, signer=patient)
    assert env.chain.sender.nonces.peek(patient.address) == 1
    # The same key sends a transaction behind Kizuna's back (another process, a wallet).
    account = Account.from_key(patient._account.key)
    tx = {"to": provider.address, "value": 1, "gas": 21_000, "nonce": 1,
          "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "chainId": env.chain.chain_id}
    env.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    # Kizuna's cached nonce (1) is now too low: the node says so, the cache resyncs, it works.
    receipt = ledger.grant(provider.address, scope("b"), expires, signer=patient)
    assert receipt.succeeded
    assert env.w3.eth.get_transaction(HexBytes(receipt.tx_hash))["nonce"] == 2
    assert env.chain.sender.nonces.peek(patient.address) == 3


def test_gas_limit_is_the_estimate_times_the_margin(tester_env: Env) -> None:
    patient, provider = tester_env.new_signer(), tester_env.new_signer(funded=False)
    ledger = tester_env.chain.ledger
    call = ledger.grant_call(provider.address, scope("lab"), tester_env.now() + 3600)
    estimate = tester_env.w3.eth.estimate_gas({"from": patient.address, "to": call.to,
                                               "data": HexBytes(call.data)})
    receipt = tester_env.chain.sender.transact(call, patient)
    sent = tester_env.w3.eth.get_transaction(HexBytes(receipt.tx_hash))
    assert sent["gas"] == math.ceil(estimate * 1.2)
    assert receipt.gas_used <= sent["gas"]


def test_insufficient_funds_is_named(env: Env) -> None:
    poor, provider = env.new_signer(funded=False), env.new_signer(funded=False)
    with pytest.raises(InsufficientFunds):
        env.chain.ledger.grant(provider.address, scope("lab"), env.now() + 3600, signer=poor)
    # Nothing was broadcast: the nonce was not consumed.
    assert env.w3.eth.get_transaction_count(poor.address) == 0


def test_a_mined_revert_is_decoded_with_its_transaction(env: Env) -> None:
    patient, provider = env.new_signer(), env.new_signer(funded=False)
    call = env.chain.ledger.revoke_call(provider.address, scope("never granted"))
    # An explicit gas limit skips the simulation, so the revert happens on-chain.
    with pytest.raises(TransactionReverted) as info:
        env.chain.sender.transact(call, patient, gas=100_000)
    assert info.value.name == "ConsentLedgerNoGrant"
    assert info.value.error_args["patient"] == patient.address
    assert info.value.receipt is not None and info.value.receipt.status == 0
    assert info.value.tx_hash.hex() in str(info.value)


def test_node_unreachable() -> None:
    with pytest.raises(NodeUnreachable, match="does not answer"):
        connect(f"http://127.0.0.1:{free_port()}", timeout=1.0)


@pytest.mark.anvil
def test_a_node_that_goes_away_is_reported(tmp_path_factory: pytest.TempPathFactory) -> None:
    node = LocalNode().start()
    try:
        env = _anvil_env(node)
        patient = env.new_signer()
    finally:
        node.stop()
    with pytest.raises(NodeUnreachable):
        env.chain.ledger.grant(patient.address, scope("x"), 2**40, signer=patient)
    with pytest.raises(NodeUnreachable):
        env.chain.ledger.has_access(patient.address, patient.address, scope("x"))


@pytest.mark.anvil
def test_receipt_timeout_and_confirmations(fresh_anvil: LocalNode) -> None:
    env = _anvil_env(fresh_anvil)
    patient, provider = env.new_signer(), env.new_signer(funded=False)
    sender = env.chain.sender
    env.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        call = env.chain.ledger.grant_call(provider.address, scope("lab"), env.now() + 3600)
        tx_hash = sender.broadcast(call, patient)
        with pytest.raises(TransactionTimeout, match="not mined"):
            sender.wait(tx_hash, sender=patient.address, timeout=0.3)
        assert sender.nonces.peek(patient.address) is None  # resynced after a timeout
        env.mine()
        with pytest.raises(TransactionTimeout, match="confirmed 3 times"):
            sender.wait(tx_hash, timeout=0.3, confirmations=3)
        env.mine(2)
        receipt = sender.wait(tx_hash, timeout=5, confirmations=3)
        assert receipt.succeeded
        assert env.w3.eth.block_number - receipt.block_number + 1 >= 3
    finally:
        env.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="gas_margin"):
        TxPolicy(gas_margin=0.9)
    with pytest.raises(ValueError, match="confirmations"):
        replace(TxPolicy(), confirmations=0)


def test_plain_value_transfer_through_the_sender(tester_env: Env) -> None:
    target = LocalKeySigner.generate()
    before = tester_env.w3.eth.get_balance(target.address)
    tester_env.chain.sender.transact(ContractCall(to=target.address, data=b"", value=5),
                                     tester_env.funder)
    assert tester_env.w3.eth.get_balance(target.address) == before + 5


@pytest.mark.parametrize(("message", "expected"), [
    ("nonce too low", NonceTooLow),                                          # anvil, geth
    ("Nonce too low. Expected nonce to be 3 but got 1.", NonceTooLow),       # Hardhat
    ("Invalid transaction nonce: Expected 2, but got 0", NonceTooLow),       # eth-tester
    ("Invalid transaction nonce: Expected 2, but got 5", NonceTooHigh),      # eth-tester
    ("Insufficient funds for gas * price + value", InsufficientFunds),       # anvil
    ("Sender doesn't have enough funds to send tx. The max upfront cost is: 1", InsufficientFunds),
    ("insufficient funds for gas * price + value: balance 0", InsufficientFunds),  # geth
])
def test_node_messages_map_to_kizuna_errors(message: str, expected: type) -> None:
    error = Web3RPCError(message, rpc_response={"jsonrpc": "2.0", "id": 1,
                                                "error": {"code": -32000, "message": message}})
    mapped = classify(error, RevertDecoder())
    assert type(mapped) is expected
    assert message in str(mapped)


@pytest.mark.anvil
def test_a_node_on_another_chain_than_the_sender_is_named(anvil_env: Env) -> None:
    # A sender checked for chain 1 talking to anvil (31337), e.g. after the node was swapped.
    sender = TransactionSender(anvil_env.w3, chain_id=1, decoder=RevertDecoder())
    patient = anvil_env.new_signer()
    call = anvil_env.chain.ledger.grant_call(patient.address, scope("lab"), anvil_env.now() + 60)
    with pytest.raises(WrongChain) as info:
        sender.transact(call, patient)
    assert (info.value.expected, info.value.actual) == (1, 31337)
