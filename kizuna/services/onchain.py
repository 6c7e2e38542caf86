"""How a participant's on-chain action reaches the chain through the service, and how the service
checks that it did.

The service holds no participant key, so every action arrives in one of two forms:

* a :class:`~kizuna.chain.eip712.SignedAction` (EIP-712, gasless): the service's relayer submits
  it (``...BySig``) and pays the gas;
* a :class:`SentTransaction`: the participant's wallet (or the CLI with its own key) sent the
  transaction itself; the service waits for its receipt.

Either way, the service then reads the *events* of the receipt and accepts the action only if the
expected event is there with the expected arguments (:func:`require_event`): a transaction hash
proves nothing until its logs say what it did. :func:`prepare` builds what a browser wallet needs
for an action: ``eth_sendTransaction`` params (simulated first) and, for the ledger's gasless
actions, the ``eth_signTypedData_v4`` document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from kizuna.chain.eip712 import SIGNED_ACTIONS, SignedAction, TypedData, parse_ledger_value
from kizuna.chain.index.events import DecodedEvent
from kizuna.chain.models import ContractCall, TxReceipt
from kizuna.chain.signers import ExternalWalletSigner
from kizuna.chain.transactions import node_errors
from kizuna.errors import InputError
from kizuna.types import Address, checked_address, checked_bytes32
from kizuna.wire.onchain import PreparedAction, SentTransaction

if TYPE_CHECKING:
    from kizuna.chain.agents.base import Agent
    from kizuna.chain.connection import Chain
    from kizuna.chain.relayer import Relayer

Authorization = SignedAction | SentTransaction
"""A participant's action as it reaches the service: signed for the relayer, or sent already."""


def prepare(chain: Chain, call: ContractCall, *, sender: Address,
            typed: TypedData | None = None) -> PreparedAction:
    """Prepare ``call`` for ``sender``'s wallet (simulated first: a revert is raised decoded)."""
    wallet = ExternalWalletSigner(address=checked_address("sender", sender),
                                  chain_id=chain.chain_id)
    params = chain.ledger.wallet_request(call, wallet)
    if typed is not None:
        wallet.typed_data_request(typed)  # refuses typed data for another chain
    return PreparedAction(action=call.function, transaction=params,
                          typed_data=typed.to_json() if typed is not None else None)


def wait_for(chain: Chain, sent: SentTransaction) -> TxReceipt:
    """The receipt of a transaction a wallet sent (a revert is raised decoded).

    A hash the node has never seen is refused at once (``InputError``) instead of being waited
    for until the timeout.
    """
    with node_errors(chain.decoder):
        try:
            chain.w3.eth.get_transaction(HexBytes(sent.tx_hash))
        except TransactionNotFound:
            raise InputError("txHash", f"the node knows no transaction {sent.hex()}") from None
    return chain.sender.wait(sent.tx_hash)


def submit(chain: Chain, relayer: Relayer | None, authorization: Authorization) -> TxReceipt:
    """Relay a signed action, or wait for a sent transaction; the receipt either way."""
    if isinstance(authorization, SignedAction):
        if relayer is None:
            raise InputError("signature", "this service has no relayer: send the transaction")
        return relayer.relay(authorization)
    if isinstance(authorization, SentTransaction):
        return wait_for(chain, authorization)
    raise TypeError(f"not an authorization: {type(authorization).__name__}")


def require_event(chain: Chain, receipt: TxReceipt, name: str, *,
                  expected: Mapping[str, Any], contract: str = "ledger") -> DecodedEvent:
    """The ``name`` event of ``receipt`` whose arguments include ``expected``.

    ``InputError`` on ``txHash`` when the transaction did something else (another patient,
    another record, another contract): the service never trusts a hash for what it claims.
    """
    agent: Agent = getattr(chain, contract)
    events = agent.events(receipt, name)
    for event in events:
        if all(_same(event.args.get(key), value) for key, value in expected.items()):
            return event
    wanted = ", ".join(f"{k}={_show(v)}" for k, v in expected.items())
    found = "; ".join(f"{e.name}({', '.join(f'{k}={_show(v)}' for k, v in e.args.items())})"
                      for e in agent.events(receipt)) or "no event of the contract"
    raise InputError(
        "txHash",
        f"transaction 0x{receipt.tx_hash.hex()} did not emit {name}({wanted}); it emitted {found}",
    )


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str) and is_address(expected):
        return isinstance(actual, str) and is_address(actual) and (
            to_checksum_address(actual) == to_checksum_address(expected))
    if isinstance(expected, bytes | bytearray):
        return isinstance(actual, bytes | bytearray) and bytes(actual) == bytes(expected)
    if isinstance(expected, list | tuple):
        return (isinstance(actual, list | tuple) and len(actual) == len(expected)
                and all(_same(a, e) for a, e in zip(actual, expected, strict=True)))
    return bool(actual == expected)


def _show(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def signed_field(action: SignedAction, name: str, kind: str) -> Any:
    """One field of a signed action's message, parsed; ``InputError`` naming it otherwise.

    ``kind``: ``address`` (EIP-55 string), ``bytes32`` (bytes), ``bytes32[]`` (list of bytes),
    ``uint`` (int). Typed data arrives from outside: a missing or malformed field is bad input,
    never a crash."""
    expected_types = {action.kind: SIGNED_ACTIONS[action.kind]}
    if {k: tuple(v) for k, v in action.typed.types.items()} != expected_types:
        raise InputError("typed_data.types", f"are not the ledger's {action.kind} type")
    where = f"typed_data.message.{name}"
    message = action.typed.message
    if name not in message:
        raise InputError(where, "missing")
    solidity_type = {"uint": "uint256"}.get(kind, kind)
    if solidity_type not in ("address", "uint256", "bytes32", "bytes32[]"):
        raise ValueError(f"unknown field kind {kind!r}")
    return parse_ledger_value(where, solidity_type, message[name])


__all__ = [
    "Authorization",
    "checked_address",  # re-exported from kizuna.types (their home) for the services
    "checked_bytes32",
    "prepare",
    "require_event",
    "signed_field",
    "submit",
    "wait_for",
]
