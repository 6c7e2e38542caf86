"""The test bench of the contract suite: the three Kizuna contracts on eth-tester (py-evm).

One :class:`Bench` is built per pytest session (deploying takes a few hundred milliseconds, a
snapshot revert ten): ``bench.reset()`` rewinds the chain to the state right after set-up, so every
test starts from the same chain, the same clock and the same nonces.

The clock is deterministic: right after deploying, the chain travels to :data:`T0` (years ahead of
the wall clock), after which py-evm stamps every new block ``parent.timestamp + 1``. So a
transaction mined next runs at ``bench.next_time()`` in block ``bench.next_block()``, and a call
"at latest" sees ``bench.now()``; tests can predict every time an error reports.

Reverts are decoded by name with :class:`kizuna.chain.reverts.RevertDecoder` (the custom errors of
the three ABIs) and compared with *all* their arguments; events are decoded from the receipts'
logs with every ABI, so a test asserts the exact list of events a transaction emitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3._utils.events import get_event_data
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction

from kizuna.chain.artifacts import load_artifact
from kizuna.chain.deploy import Deployment, deploy
from kizuna.chain.eip712 import Eip712Domain, TypedData, ledger_domain
from kizuna.chain.reverts import RevertDecoder
from kizuna.errors import ContractReverted
from kizuna.types import Address

T0 = 2_000_000_000
"""Chain time right after set-up (2033): far ahead of the wall clock, so blocks tick by 1 s."""

TX_GAS = 3_000_000
"""Gas limit of transactions sent without estimation (same-block tests, the state machine)."""

UMBRAL_KEY = b"\x02" + bytes(range(1, 33))
"""A well-formed compressed point (the chain checks the shape only)."""

UMBRAL_KEY_2 = b"\x03" + bytes(range(100, 132))


def b32(label: str) -> bytes:
    """A deterministic 32-byte id for tests (scope ids, record ids, refs, commitments)."""
    return bytes(keccak(text=label))


@dataclass(frozen=True)
class Ev:
    """One decoded log: which contract emitted which event with which arguments."""

    contract: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Actors:
    """The cast, one eth-tester account each (all unlocked and funded)."""

    admin: Address
    """Deployer: DEFAULT_ADMIN_ROLE of the registry and the access log."""
    registrar: Address
    anchorer: Address
    """The Kizuna service: ANCHOR_ROLE."""
    patient: Address
    patient2: Address
    guardian: Address
    provider: Address
    """Verified, active provider."""
    provider2: Address
    """Verified, active provider (tests suspend it)."""
    unverified: Address
    """Never registered; patients may still grant to it."""
    stranger: Address
    """Unrelated to everyone; also the relayer of signed actions."""


class Bench:
    """Registry, ledger, access log (plus a second ledger) on one in-process chain."""

    def __init__(self) -> None:
        self.tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        raw_keys = self.tester.backend.account_keys
        keys = [k.to_hex() if hasattr(k, "to_hex") else str(k) for k in raw_keys]
        addresses = [Address(Account.from_key(k).address) for k in keys]
        self._keys = dict(zip(addresses, keys, strict=True))
        self._names: dict[str, str] = {}
        a = addresses
        self.actors = Actors(
            admin=a[0], registrar=a[1], anchorer=a[2], patient=a[3], patient2=a[4],
            guardian=a[5], provider=a[6], provider2=a[7], unverified=a[8], stranger=a[9],
        )
        self.deployment: Deployment = deploy(
            self.w3, Account.from_key(keys[0]), registrar=a[1], anchorer=a[2], directory=None
        )
        self.abis = {name: load_artifact(name).abi_list
                     for name in ("ConsentLedger", "ProviderRegistry", "AccessLog")}
        self.ledger = self._at("ConsentLedger", self.deployment.consent_ledger)
        self.registry = self._at("ProviderRegistry", self.deployment.provider_registry)
        self.access_log = self._at("AccessLog", self.deployment.access_log)
        # A second ledger on the same chain: signatures for it must not work on the first.
        self.other_ledger = self.deploy_contract("ConsentLedger", self.registry.address)
        self.decoder = RevertDecoder(self.abis.values())
        self._topics = self._event_topics()
        self.chain_id = int(self.w3.eth.chain_id)
        self.tester.time_travel(T0 + 1)  # mines a block at T0; the next one is T0 + 1
        for provider in (self.actors.provider, self.actors.provider2):
            self.tx(self.registry.functions.addProvider(provider, UMBRAL_KEY, b32("licence")),
                    self.actors.registrar)
        self._snapshot = self.tester.take_snapshot()

    def _at(self, name: str, address: str) -> Contract:
        self._names[Web3.to_checksum_address(address)] = name
        return self.w3.eth.contract(address=Web3.to_checksum_address(address),
                                    abi=self.abis[name])

    def _event_topics(self) -> dict[tuple[str, bytes], tuple[str, dict[str, Any]]]:
        topics: dict[tuple[str, bytes], tuple[str, dict[str, Any]]] = {}
        for contract, abi in self.abis.items():
            for entry in abi:
                if entry["type"] != "event":
                    continue
                types = ",".join(i["type"] for i in entry["inputs"])
                topic = bytes(keccak(text=f"{entry['name']}({types})"))
                topics[(contract, topic)] = (contract, entry)
        return topics

    # --- chain control ----------------------------------------------------------------------

    def reset(self) -> None:
        """Rewind to the state right after set-up."""
        self.tester.revert_to_snapshot(self._snapshot)

    def snapshot(self) -> Any:
        return self.tester.take_snapshot()

    def revert_to(self, snapshot: Any) -> None:
        self.tester.revert_to_snapshot(snapshot)

    def now(self) -> int:
        """``block.timestamp`` seen by a call at the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def next_time(self) -> int:
        """``block.timestamp`` of the next transaction (also what a reverting one reports)."""
        return self.now() + 1

    def next_block(self) -> int:
        return self.block_number() + 1

    def advance(self, seconds: int) -> None:
        """Mine one empty block ``seconds`` after the latest one (``seconds >= 1``)."""
        assert seconds >= 1
        self.tester.time_travel(self.now() + seconds + 1)

    def travel_to(self, timestamp: int) -> None:
        """Mine one empty block stamped ``timestamp`` (after the latest one)."""
        self.advance(timestamp - self.now())

    def storage_root(self, address: str) -> bytes:
        """The storage trie root of ``address`` at the latest block (py-evm state)."""
        chain = self.tester.backend.chain
        state = chain.get_vm(at_header=chain.get_canonical_head()).state
        return bytes(state._account_db._get_storage_root(bytes.fromhex(address[2:])))

    def key(self, address: str) -> str:
        return str(self._keys[address])

    def contract_name(self, address: str) -> str:
        """Which Kizuna contract lives at ``address`` (any instance made by this bench)."""
        return str(self._names[Web3.to_checksum_address(address)])

    # --- transactions -------------------------------------------------------------------------

    def tx(self, fn: ContractFunction | ContractConstructor, sender: str) -> Any:
        """Send ``fn`` from ``sender`` (gas estimated), return the receipt; must succeed."""
        receipt = self.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert receipt["status"] == 1, f"{fn} reverted"
        return receipt

    def send(self, fn: ContractFunction, sender: str) -> bytes:
        """Send ``fn`` with a fixed gas limit and no estimation; inside :meth:`one_block` the
        transaction waits in the pending block. (eth-tester validates a pending transaction
        against the latest state, so one block holds at most one transaction per sender.)"""
        return bytes(fn.transact({"from": sender, "gas": TX_GAS}))

    def reverts(self, fn: ContractFunction, sender: str, name: str,
                **args: Any) -> ContractReverted:
        """``fn`` sent by ``sender`` reverts with custom error ``name`` and exactly ``args``.

        The transaction is run as eth-tester runs a transaction before mining it (gas estimation
        on top of the latest block, so at :meth:`next_time`), straight through eth-tester: web3's
        eth-tester provider re-decodes every revert as ``Error(string)`` and crashes on custom
        errors whose first word looks like a string offset."""
        return self._revert_of(self.tester.estimate_gas, fn, sender, name, args)

    def call_reverts(self, fn: ContractFunction, name: str, **args: Any) -> ContractReverted:
        """The view ``fn`` reverts with custom error ``name`` and exactly ``args``."""
        return self._revert_of(self.tester.call, fn, self.actors.stranger, name, args)

    def _revert_of(self, run: Any, fn: ContractFunction, sender: str, name: str,
                   args: dict[str, Any]) -> ContractReverted:
        tx = {"from": sender, "to": fn.address, "data": fn._encode_transaction_data()}
        try:
            run(tx)
        except TransactionFailed as exc:
            decoded = self.decoder.from_exception(exc)
            assert decoded is not None, f"{exc!r} carries no revert data"
        else:
            raise AssertionError(f"{fn.fn_name} by {sender} did not revert (expected {name})")
        assert (decoded.name, decoded.error_args) == (name, args), decoded
        return decoded

    def deploy_contract(self, name: str, *args: Any) -> Contract:
        """One more instance of a Kizuna contract from the committed artifact."""
        factory = self.w3.eth.contract(abi=self.abis[name], bytecode=load_artifact(name).bytecode)
        receipt = self.tx(factory.constructor(*args), self.actors.admin)
        return self._at(name, receipt["contractAddress"])

    @contextmanager
    def one_block(self) -> Iterator[list[bytes]]:
        """Transactions sent with :meth:`send` inside the ``with`` body all land in one block."""
        hashes: list[bytes] = []
        self.tester.disable_auto_mine_transactions()
        try:
            yield hashes
        finally:
            mined = self.tester.enable_auto_mine_transactions()  # mines the pending block
            hashes[:] = [bytes.fromhex(h[2:]) if isinstance(h, str) else bytes(h) for h in mined]

    def receipt(self, tx_hash: bytes) -> Any:
        return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))

    # --- events -------------------------------------------------------------------------------

    def events(self, receipt: Any) -> list[Ev]:
        """Every log of ``receipt``, decoded (unknown logs fail the test)."""
        found: list[Ev] = []
        for log in receipt["logs"]:
            contract = self.contract_name(log["address"])
            key = (contract, bytes(log["topics"][0]))
            assert key in self._topics, f"unknown log {log}"
            _, abi = self._topics[key]
            data = get_event_data(self.w3.codec, abi, log)
            found.append(Ev(contract, data["event"], dict(data["args"])))
        return found

    def event_list(self, receipt: Any) -> list[tuple[str, dict[str, Any]]]:
        """``(name, args)`` of every log of ``receipt``, in order."""
        return [(e.name, e.args) for e in self.events(receipt)]

    # --- EIP-712 ------------------------------------------------------------------------------

    def domain(self, *, ledger: Contract | None = None,
               chain_id: int | None = None) -> Eip712Domain:
        contract = ledger if ledger is not None else self.ledger
        return ledger_domain(chain_id=self.chain_id if chain_id is None else chain_id,
                             ledger=contract.address)

    def sign(self, typed: TypedData, signer: str) -> bytes:
        """``signer``'s 65-byte signature of ``typed``."""
        return bytes(Account.sign_message(typed.signable(), private_key=self.key(signer)).signature)

    @staticmethod
    def recover(typed: TypedData, signature: bytes) -> str:
        """The address a contract recovers from ``signature`` over ``typed``."""
        message: SignableMessage = typed.signable()
        return str(Account.recover_message(message, signature=signature))

    def nonce(self, patient: str) -> int:
        return int(self.ledger.functions.nonces(patient).call())


def selector(fn: ContractFunction) -> bytes:
    """The 4-byte selector of a bound contract function (``GuardianActed.action``)."""
    raw = fn.selector
    return bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)


def scope_ids(*labels: str) -> list[bytes]:
    return [b32(f"scope:{label}") for label in labels]
