"""The browser tests' wallet itself (tests/web/testwallet.js + injected_wallet.py), checked in
Chromium on a bare page of the stack's origin: it is announced like a real wallet (EIP-6963 and
window.ethereum), its signatures are real (they recover to its address: personal_sign signs the
bytes of the hex it is given, as MetaMask does; eth_signTypedData_v4 is EIP-712), its
transactions are mined by anvil, and its failure modes answer the EIP-1193 codes wallets send.
The page tests rely on all of this; a wallet that signed wrongly would make them pass or fail
for the wrong reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from injected_wallet import MAINNET, TestWallet
from playwright.sync_api import Page
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

BARE = "<!doctype html><html lang=en><title>wallet check</title><main>wallet check</main></html>"


def _bare(web: Web, wallets: list[TestWallet]) -> Page:
    """A page of the stack's origin without the app (its HTML served by the route)."""
    session = web.open(wallets, goto=False)
    url = web.stack.api_url + "/__wallet_check"
    session.page.route(url, lambda route: route.fulfill(status=200, body=BARE,
                                                        content_type="text/html"))
    session.page.goto(url)
    page: Page = session.page
    return page


def _call(page: Page, method: str, params: list[Any] | None = None) -> Any:
    """window.ethereum.request, its answer or its error as {code, message}."""
    return page.evaluate(
        """async ([method, params]) => {
            try { return {result: await window.ethereum.request({method, params})}; }
            catch (e) { return {error: {code: e.code, message: e.message}}; }
        }""", [method, params or []])


def test_it_is_announced_by_eip6963_and_is_window_ethereum(web: Web) -> None:
    first, second = web.wallet(name="Alpha Wallet"), web.wallet(name="Beta Wallet",
                                                                rdns="org.kizuna.beta")
    page = _bare(web, [first, second])
    seen = page.evaluate(
        """() => {
            const seen = [];
            window.addEventListener("eip6963:announceProvider", (e) => seen.push({
              ...e.detail.info, request: typeof e.detail.provider.request,
              isEthereum: e.detail.provider === window.ethereum}));
            window.dispatchEvent(new Event("eip6963:requestProvider"));
            return seen;
        }""")
    assert [w["name"] for w in seen] == ["Alpha Wallet", "Beta Wallet"]
    assert [w["uuid"] for w in seen] == [first.uuid, second.uuid]
    assert all(w["icon"].startswith("data:image/svg+xml;base64,") for w in seen)
    assert [w["isEthereum"] for w in seen] == [True, False]
    assert {w["request"] for w in seen} == {"function"}


def test_signatures_are_real_and_recover_to_the_account(web: Web) -> None:
    wallet = web.wallet()
    page = _bare(web, [wallet])
    assert _call(page, "eth_accounts") == {"result": []}  # not connected yet
    assert _call(page, "eth_requestAccounts") == {"result": [wallet.address.lower()]}
    assert _call(page, "eth_chainId") == {"result": hex(web.stack.chain_id)}

    text = "127.0.0.1 wants you to sign in\nNonce: 12345678 — 日本語"
    signature = _call(page, "personal_sign", ["0x" + text.encode().hex(), wallet.address])
    assert Account.recover_message(encode_defunct(text=text),
                                   signature=signature["result"]) == wallet.address

    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "chainId", "type": "uint256"}],
                  "Note": [{"name": "owner", "type": "address"},
                           {"name": "text", "type": "string"}]},
        "primaryType": "Note", "domain": {"name": "Kizuna", "chainId": web.stack.chain_id},
        "message": {"owner": wallet.address, "text": "key derivation"},
    }
    signed = _call(page, "eth_signTypedData_v4", [wallet.address, json.dumps(typed)])
    assert Account.recover_message(encode_typed_data(full_message=typed),
                                   signature=signed["result"]) == wallet.address
    # Another account's signature is refused, as a wallet refuses an account it did not connect.
    other = Account.create().address
    assert _call(page, "personal_sign", ["0x00", other])["error"]["code"] == 4100


def test_transactions_are_signed_and_mined_by_anvil(web: Web) -> None:
    wallet = web.wallet()
    page = _bare(web, [wallet])
    _call(page, "eth_requestAccounts")
    to = Account.create().address
    sent = _call(page, "eth_sendTransaction", [{"from": wallet.address, "to": to,
                                                "value": hex(12345)}])
    receipt = _call(page, "eth_getTransactionReceipt", [sent["result"]])["result"]
    assert receipt["status"] == "0x1"
    assert receipt["from"].lower() == wallet.address.lower()
    assert _call(page, "eth_getBalance", [to, "latest"]) == {"result": hex(12345)}


def test_failure_modes_answer_the_eip1193_codes(web: Web) -> None:
    rejecting, locked = web.wallet(rejecting=True), web.wallet(locked=True)
    page = _bare(web, [rejecting])
    assert _call(page, "eth_requestAccounts") == {
        "error": {"code": 4001, "message": "User rejected the request."}}
    assert _call(page, "eth_chainId") == {"result": hex(web.stack.chain_id)}
    page = _bare(web, [locked])
    assert _call(page, "eth_requestAccounts")["error"]["code"] == 4100
    assert _call(page, "eth_accounts") == {"result": []}


def test_chains_switch_add_and_refuse(web: Web) -> None:
    expected = hex(web.stack.chain_id)
    stuck = web.wallet(current_chain=MAINNET, refuses_switch=True)
    page = _bare(web, [stuck])
    assert _call(page, "eth_chainId") == {"result": "0x1"}
    assert _call(page, "wallet_switchEthereumChain",
                 [{"chainId": expected}])["error"]["code"] == 4200

    fresh = web.wallet(current_chain=MAINNET)
    page = _bare(web, [fresh])
    page.evaluate("() => { window.heard = []; "
                  "window.ethereum.on('chainChanged', (c) => window.heard.push(c)); }")
    assert _call(page, "wallet_switchEthereumChain",
                 [{"chainId": expected}])["error"]["code"] == 4902
    added = _call(page, "wallet_addEthereumChain", [{
        "chainId": expected, "chainName": "Kizuna", "rpcUrls": [web.stack.rpc_url],
        "nativeCurrency": {"name": "Ether", "symbol": "ETH", "decimals": 18}}])
    assert added == {"result": None}
    assert _call(page, "eth_chainId") == {"result": expected}
    page.wait_for_function("(c) => window.heard.includes(c)", arg=expected)


def test_events_and_held_requests(web: Web) -> None:
    wallet = web.wallet()
    second = wallet.add_account()
    page = _bare(web, [wallet])
    _call(page, "eth_requestAccounts")
    page.evaluate("() => { window.heard = []; "
                  "window.ethereum.on('accountsChanged', (a) => window.heard.push(a[0])); }")
    wallet.switch_account(1)
    assert page.evaluate("() => window.heard") == [second.address.lower()]
    assert wallet.address == second.address

    wallet.hold(page, "personal_sign")
    page.evaluate("() => { window.signed = window.ethereum.request({method: 'personal_sign', "
                  f"params: ['0x6869', '{wallet.address}']}}); }}")
    wallet.wait_held(page, "personal_sign")
    assert wallet.calls_of("personal_sign") == []  # not answered while held
    wallet.release(page, "personal_sign")
    signature = page.evaluate("() => window.signed")
    assert Account.recover_message(encode_defunct(text="hi"), signature=signature) == \
        wallet.address
