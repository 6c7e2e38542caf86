"""The Python side of the browser tests' wallet (tests/web/testwallet.js): each injected
EIP-1193 provider sends its requests here, where a real private key signs (eth-account) and
anvil answers reads and takes raw transactions. No part of the page's path is mocked: the page
gets what MetaMask would answer, computed for real.

A test sets failure modes on a :class:`TestWallet` (``rejecting``, ``rejects``, ``locked``,
``refuses_switch``, a start on another chain) and drives the page's side with
:meth:`TestWallet.emit`, :meth:`TestWallet.hold` / :meth:`TestWallet.release`. Every request
is logged (:attr:`TestWallet.calls`) with what the page showed in its ``wallet-prompt`` panel
meanwhile.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import BrowserContext, Page

SCRIPT = Path(__file__).with_name("testwallet.js")

USER_REJECTED = 4001
UNAUTHORIZED = 4100
UNSUPPORTED_METHOD = 4200
UNRECOGNIZED_CHAIN = 4902
MAINNET = 1

_NODE = httpx.Client(timeout=30)
"""Every wallet's connection to its node (anvil). One client for all, kept open: a client per
request (``httpx.post``) builds an SSL context each time (certifi's CA file parsed, ~30 ms of
CPU), for each of the hundreds of chain reads a test's page makes through its wallet."""


class WalletRefusal(Exception):
    """An EIP-1193 error the wallet answers (code and message, as a wallet sends them)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _icon(letter: str) -> str:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" '
           f'height="32" rx="6" fill="#1d4ed8"/><text x="16" y="22" font-size="16" '
           f'text-anchor="middle" fill="#fff">{letter}</text></svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@dataclass
class Call:
    """One request the page made of the wallet."""

    method: str
    params: list[Any]
    prompt: str | None
    """The text of the page's ``wallet-prompt`` panel while it asked (None: no panel)."""
    answer: dict[str, Any] = field(default_factory=dict)
    """What the wallet answered: ``{"result": ...}`` or ``{"error": {...}}``."""


@dataclass
class TestWallet:
    """One wallet in the browser: its accounts (real keys), its chains, its failure modes."""

    __test__ = False  # not a pytest test class

    rpc_url: str
    chain_id: int
    """The deployment's chain (anvil's)."""
    name: str = "Kizuna Test Wallet"
    rdns: str = "org.kizuna.testwallet"
    accounts: list[LocalAccount] = field(default_factory=lambda: [Account.create()])
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    current_chain: int = 0
    """The chain the wallet is on (0: the deployment's)."""
    known_chains: set[int] = field(default_factory=set)
    rejecting: bool = False
    """The user says no to everything (4001)."""
    rejects: set[str] = field(default_factory=set)
    """Methods the user says no to (4001), e.g. only the key-derivation signature."""
    locked: bool = False
    """The wallet is locked: no account given (eth_requestAccounts answers 4100)."""
    refuses_switch: bool = False
    """wallet_switchEthereumChain answers 4200 (a wallet that cannot switch networks)."""
    connected: bool = False
    calls: list[Call] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    events: list[tuple[str, Any]] = field(default_factory=list)
    """Events to send once the current answer is given (a switched chain's chainChanged)."""

    def __post_init__(self) -> None:
        if not self.current_chain:
            self.current_chain = self.chain_id
        self.known_chains |= {MAINNET, self.current_chain}

    # --- what the test sees and drives

    @property
    def account(self) -> LocalAccount:
        return self.accounts[0]

    @property
    def address(self) -> str:
        return str(self.account.address)

    def info(self) -> dict[str, str]:
        return {"uuid": self.uuid, "name": self.name, "rdns": self.rdns,
                "icon": _icon(self.name[:1].upper() or "W")}

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def fund(self, wei: int = 10 * 10**18) -> None:
        """Give every account ether on anvil (for eth_sendTransaction)."""
        for account in self.accounts:
            self._rpc("anvil_setBalance", [account.address, hex(wei)])

    def add_account(self) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.accounts.append(account)
        return account

    def switch_account(self, index: int) -> None:
        """The user picks another account in the wallet: it comes first, and the page hears
        ``accountsChanged``."""
        self.accounts.insert(0, self.accounts.pop(index))
        self.emit("accountsChanged", [a.address.lower() for a in self.accounts[:1]])

    def emit(self, event: str, payload: Any) -> None:
        """An EIP-1193 event to the page's listeners, in every page of the context."""
        for page in self.pages:
            page.evaluate("([uuid, event, payload]) => "
                          "window.__kizunaTestWallet.emit(uuid, event, payload)",
                          [self.uuid, event, payload])

    def hold(self, page: Page, method: str) -> None:
        """Requests of ``method`` wait unanswered (as while a user reads the wallet's popup)."""
        page.evaluate("(m) => window.__kizunaTestWallet.hold(m)", method)

    def wait_held(self, page: Page, method: str, timeout: float = 30_000) -> None:
        page.wait_for_function("(m) => window.__kizunaTestWallet.pending().includes(m)",
                               arg=method, timeout=timeout)

    def release(self, page: Page, method: str) -> None:
        page.evaluate("(m) => window.__kizunaTestWallet.release(m)", method)

    # --- the requests

    def handle(self, method: str, params: list[Any], prompt: str | None) -> dict[str, Any]:
        """Answer one request: ``{"result": ...}`` or ``{"error": {code, message}}``, and the
        events the wallet sends right after (the page cannot be called into from here: the
        answer is on its way back to it)."""
        call = Call(method, list(params), prompt)
        self.calls.append(call)
        self.events = []
        try:
            answer: dict[str, Any] = {"result": self._answer(method, params)}
        except WalletRefusal as refusal:
            answer = {"error": {"code": refusal.code, "message": refusal.message}}
        call.answer = dict(answer)
        answer["events"] = [[event, payload] for event, payload in self.events]
        return answer

    def _answer(self, method: str, params: list[Any]) -> Any:
        if method == "eth_accounts":
            return [self.address.lower()] if self.connected and not self.locked else []
        if method == "eth_chainId":
            return hex(self.current_chain)
        if method == "net_version":
            return str(self.current_chain)
        declined = self.rejecting and method not in ("eth_call", "eth_blockNumber",
                                                     "eth_getBalance")
        if declined or method in self.rejects:
            raise WalletRefusal(USER_REJECTED, "User rejected the request.")
        if method == "eth_requestAccounts":
            if self.locked:
                raise WalletRefusal(UNAUTHORIZED, "The wallet is locked.")
            self.connected = True
            return [self.address.lower()]
        if method == "wallet_switchEthereumChain":
            return self._switch(int(params[0]["chainId"], 16))
        if method == "wallet_addEthereumChain":
            return self._add(params[0])
        if method in ("personal_sign", "eth_signTypedData_v4", "eth_sendTransaction"):
            self._require_account(method, params)
            if method == "personal_sign":
                return self._personal_sign(params)
            if method == "eth_signTypedData_v4":
                return self._sign_typed(params)
            return self._send(params[0])
        if method.startswith("eth_"):
            if self.current_chain != self.chain_id:
                raise WalletRefusal(-32603, f"this test wallet has no node for chain "
                                            f"{self.current_chain}")
            return self._rpc(method, params)
        raise WalletRefusal(UNSUPPORTED_METHOD, f"The test wallet does not support {method}.")

    def _require_account(self, method: str, params: list[Any]) -> None:
        if self.locked or not self.connected:
            raise WalletRefusal(UNAUTHORIZED, "The requested account has not been authorized.")
        named = params[1] if method == "personal_sign" else (
            params[0] if method == "eth_signTypedData_v4" else params[0].get("from"))
        if named and str(named).lower() != self.address.lower():
            raise WalletRefusal(UNAUTHORIZED, f"The requested account {named} has not been "
                                              "authorized.")

    def _switch(self, chain: int) -> None:
        if self.refuses_switch:
            raise WalletRefusal(UNSUPPORTED_METHOD, "This wallet cannot switch networks.")
        if chain not in self.known_chains:
            raise WalletRefusal(UNRECOGNIZED_CHAIN, f"Unrecognized chain ID {hex(chain)}. "
                                                    "Try adding the chain first.")
        if chain != self.current_chain:
            self.current_chain = chain
            self.events.append(("chainChanged", hex(chain)))
        return None

    def _add(self, spec: dict[str, Any]) -> None:
        chain = int(spec["chainId"], 16)
        urls = spec.get("rpcUrls") or []
        if chain == self.chain_id and self.rpc_url not in urls:
            raise WalletRefusal(-32602, f"rpcUrls {urls} do not reach chain {chain}")
        self.known_chains.add(chain)
        return self._switch(chain)  # MetaMask offers to switch to a chain just added

    def _personal_sign(self, params: list[Any]) -> str:
        data = str(params[0])
        message = (encode_defunct(hexstr=data) if data.startswith("0x")
                   else encode_defunct(text=data))
        return "0x" + self.account.sign_message(message).signature.hex().removeprefix("0x")

    def _sign_typed(self, params: list[Any]) -> str:
        document = params[1] if isinstance(params[1], dict) else json.loads(params[1])
        signed = self.account.sign_message(encode_typed_data(full_message=document))
        return "0x" + signed.signature.hex().removeprefix("0x")

    def _send(self, tx: dict[str, Any]) -> str:
        if self.current_chain != self.chain_id:
            raise WalletRefusal(-32603, f"the wallet is on chain {self.current_chain}")
        call = {"from": self.address, "to": tx.get("to"), "data": tx.get("data", "0x"),
                "value": tx.get("value", "0x0")}
        gas = int(tx["gas"], 16) if tx.get("gas") else int(self._rpc("eth_estimateGas", [call]), 16)
        base = int(self._rpc("eth_gasPrice", []), 16)
        transaction: dict[str, Any] = {
            "chainId": self.chain_id, "to": tx.get("to"), "data": tx.get("data", "0x"),
            "value": int(tx.get("value", "0x0"), 16), "gas": gas,
            "nonce": int(self._rpc("eth_getTransactionCount", [self.address, "pending"]), 16),
            "maxFeePerGas": 2 * base + 1, "maxPriorityFeePerGas": 1,
        }
        signed = self.account.sign_transaction(transaction)
        return str(self._rpc("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()
                                                         .removeprefix("0x")]))

    def _rpc(self, method: str, params: list[Any]) -> Any:
        answer = _NODE.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                "params": params}).json()
        if "error" in answer:
            error = answer["error"]
            raise WalletRefusal(int(error.get("code", -32603)), str(error.get("message")))
        return answer["result"]


def install(context: BrowserContext, wallets: list[TestWallet]) -> None:
    """Inject the wallets into every page of ``context`` (before the page's own scripts) and
    route their requests to the Python side."""
    by_uuid = {wallet.uuid: wallet for wallet in wallets}

    def request(source: dict[str, Any], wallet_id: str, method: str, params: Any,
                prompt: str | None) -> dict[str, Any]:
        wallet = by_uuid[wallet_id]
        answer = wallet.handle(method, params if isinstance(params, list) else [params], prompt)
        return answer

    context.expose_binding("__kizunaWalletRequest", request)
    config = json.dumps([wallet.info() for wallet in wallets])
    context.add_init_script(script=f"const __KIZUNA_TEST_WALLETS = {config};\n"
                                   + SCRIPT.read_text())
