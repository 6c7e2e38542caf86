"""Connecting a wallet in the real page (Chromium, the real stack, the test wallet signing with
real keys): account, chain, Sign-In with Ethereum (personal_sign), the key-derivation signature
(eth_signTypedData_v4), the connected account and Disconnect; the wallet picker; and each
failure a patient meets -- declined, wrong chain, locked wallet, another account chosen, the
API unreachable -- shown in the page with a clear message, ready to try again."""

from __future__ import annotations

import json
import re

import pytest
from browser import Session, axe_violations, describe
from eth_account import Account
from eth_account.messages import encode_defunct
from injected_wallet import MAINNET, TestWallet
from playwright.sync_api import Page, expect
from web_harness import Web

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

CONNECT = "Connect wallet"


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def connect(page: Page, wallet: TestWallet) -> None:
    """Click "Connect wallet" and wait until the page shows the wallet's account."""
    page.get_by_role("button", name=CONNECT).click()
    expect(page.get_by_test_id("account")).to_contain_text(_short(wallet.address))


def error_says(page: Page, pattern: str) -> None:
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("data-testid", "error")
    expect(alert).to_contain_text(re.compile(pattern, re.IGNORECASE))


def back_on_landing(page: Page) -> None:
    expect(page.get_by_role("button", name=CONNECT)).to_be_enabled()
    expect(page.get_by_test_id("account")).to_have_count(0)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_connect_signs_in_then_unlocks_keys_then_disconnects(web: Web, device: str) -> None:
    wallet = web.wallet()
    session = web.open([wallet], device=device)
    page = session.page
    expect(page.get_by_role("button", name=CONNECT)).to_be_visible()
    session.screenshot("landing")

    # While the wallet is asked, the page says what is signed and why.
    wallet.hold(page, "personal_sign")
    wallet.hold(page, "eth_signTypedData_v4")
    page.get_by_role("button", name=CONNECT).click()
    wallet.wait_held(page, "personal_sign")
    prompt = page.get_by_test_id("wallet-prompt")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("Sign in")
    session.screenshot("prompt-sign-in")
    wallet.release(page, "personal_sign")
    wallet.wait_held(page, "eth_signTypedData_v4")
    expect(prompt).to_contain_text("keys")
    expect(prompt).to_contain_text("KeyDerivation")
    wallet.release(page, "eth_signTypedData_v4")

    expect(page.get_by_test_id("account")).to_contain_text(_short(wallet.address))
    expect(page.get_by_test_id("wallet-prompt")).to_have_count(0)
    disconnect = page.get_by_role("button", name="Disconnect")
    expect(disconnect).to_be_visible()
    session.screenshot("connected")

    # The wallet was asked in this order: account, chain, sign-in, keys; and nothing else that
    # signs or sends.
    asked = [m for m in wallet.methods() if not m.startswith("eth_") or m in (
        "eth_requestAccounts", "eth_chainId", "eth_signTypedData_v4", "eth_sendTransaction")]
    firsts = [m for i, m in enumerate(asked) if m not in asked[:i]]
    assert firsts[:2] == ["eth_requestAccounts", "eth_chainId"]
    assert [m for m in asked if m in ("personal_sign", "eth_signTypedData_v4",
                                      "eth_sendTransaction")] == \
        ["personal_sign", "eth_signTypedData_v4"]

    # personal_sign got the SIWE message (EIP-4361) of this service, as UTF-8 hex.
    (sign_in,) = wallet.calls_of("personal_sign")
    message = bytes.fromhex(sign_in.params[0].removeprefix("0x")).decode()
    host = web.stack.api_url.removeprefix("http://")
    assert message.startswith(f"{host} wants you to sign in with your Ethereum account:\n"
                              f"{wallet.address}\n")
    assert f"Chain ID: {web.stack.chain_id}" in message
    assert f"URI: {web.stack.api_url}" in message
    assert sign_in.prompt is not None and "Sign in" in sign_in.prompt
    # The key derivation: the KeyDerivation message of docs/keys.md, for this account and chain.
    (keys,) = wallet.calls_of("eth_signTypedData_v4")
    typed = json.loads(keys.params[1])
    assert typed["primaryType"] == "KeyDerivation"
    assert int(typed["domain"]["chainId"]) == web.stack.chain_id
    assert keys.prompt is not None and "KeyDerivation" in keys.prompt
    assert typed["message"] and wallet.address.lower() in json.dumps(typed).lower()

    # The signature the keys derive from never left the page (nor did it go to the API).
    signature = bytes.fromhex(str(keys.answer["result"]).removeprefix("0x"))
    assert len(signature) == 65
    assert session.watched.carrying(signature) == []
    assert session.watched.carrying(signature[:32]) == []  # its r alone
    # (and the check can see a secret: the sign-in signature does go to POST /auth/login)
    login_signature = bytes.fromhex(str(sign_in.answer["result"]).removeprefix("0x"))
    assert [u for u in session.watched.carrying(login_signature) if u.endswith("/auth/login")]

    violations = axe_violations(page)
    assert not violations, describe(violations)

    requests_before = len(session.watched.requests)
    disconnect.click()
    back_on_landing(page)
    # The API session was ended, not only forgotten by the page.
    session.wait_until(lambda: any(r.url.endswith("/auth/logout")
                                   for r in session.watched.requests[requests_before:]),
                       "POST /auth/logout")
    session.check()


def test_several_wallets_open_a_picker_and_the_chosen_one_is_used(web: Web) -> None:
    alpha = web.wallet(name="Alpha Wallet", rdns="org.kizuna.alpha")
    beta = web.wallet(name="Beta Wallet", rdns="org.kizuna.beta")
    session = web.open([alpha, beta])
    page = session.page
    page.get_by_role("button", name=CONNECT).click()
    picker = page.get_by_role("dialog")
    expect(picker).to_be_visible()
    expect(picker.get_by_role("button", name="Alpha Wallet")).to_be_visible()
    expect(picker.get_by_role("button", name="Beta Wallet")).to_be_visible()
    session.screenshot("picker")
    violations = axe_violations(page)
    assert not violations, describe(violations)
    picker.get_by_role("button", name="Beta Wallet").click()
    expect(page.get_by_test_id("account")).to_contain_text(_short(beta.address))
    expect(picker).to_have_count(0)
    assert "personal_sign" in beta.methods()
    assert not [m for m in alpha.methods() if m != "eth_chainId"], alpha.methods()
    session.check()


def test_a_declined_request_is_explained_and_retry_works(web: Web) -> None:
    wallet = web.wallet(rejecting=True)
    session = web.open([wallet])
    page = session.page
    page.get_by_role("button", name=CONNECT).click()
    error_says(page, "declined")
    back_on_landing(page)
    session.screenshot("declined")

    # Declining the key signature (after signing in) also leaves the page ready to retry, and
    # the session just opened is closed.
    wallet.rejecting = False
    wallet.rejects = {"eth_signTypedData_v4"}
    page.get_by_role("button", name=CONNECT).click()
    error_says(page, "declined")
    back_on_landing(page)
    session.wait_until(lambda: any(r.url.endswith("/auth/logout")
                                   for r in session.watched.requests), "POST /auth/logout")

    wallet.rejects = set()
    connect(page, wallet)
    expect(page.get_by_role("alert")).to_have_count(0)
    session.check()


def test_a_wallet_that_will_not_switch_chains_gets_the_expected_chain_named(web: Web) -> None:
    wallet = web.wallet(current_chain=MAINNET, refuses_switch=True)
    session = web.open([wallet])
    page = session.page
    page.get_by_role("button", name=CONNECT).click()
    error_says(page, rf"\bchain {web.stack.chain_id}\b")
    back_on_landing(page)
    (switch,) = wallet.calls_of("wallet_switchEthereumChain")
    assert switch.params == [{"chainId": hex(web.stack.chain_id)}]
    assert not wallet.calls_of("personal_sign"), "signed in on the wrong chain"
    session.screenshot("wrong-chain")
    session.check()


def test_a_wallet_without_the_chain_is_offered_it_and_switches(web: Web) -> None:
    wallet = web.wallet(current_chain=MAINNET)
    wallet.known_chains = {MAINNET}
    session = web.open([wallet])
    connect(session.page, wallet)
    (added,) = wallet.calls_of("wallet_addEthereumChain")
    assert added.params[0]["rpcUrls"] == [web.stack.rpc_url]
    assert wallet.current_chain == web.stack.chain_id
    session.check()


def test_a_locked_wallet_is_explained(web: Web) -> None:
    wallet = web.wallet(locked=True)
    session = web.open([wallet])
    page = session.page
    page.get_by_role("button", name=CONNECT).click()
    error_says(page, "locked")
    back_on_landing(page)
    wallet.locked = False
    connect(page, wallet)
    session.check()


def test_another_account_in_the_wallet_signs_the_old_one_out_without_reloading(web: Web) -> None:
    wallet = web.wallet()
    first = wallet.address
    second = wallet.add_account()
    session = web.open([wallet])
    page = session.page
    connect(page, wallet)
    navigations = session.main_frame_navigations()
    loads = page.evaluate("() => performance.getEntriesByType('navigation').length")
    page.evaluate("() => { window.__sameDocument = true; }")

    wallet.switch_account(1)
    notice = page.get_by_test_id("notice")
    expect(notice).to_contain_text(re.compile("another account", re.IGNORECASE))
    back_on_landing(page)
    page.wait_for_timeout(1500)  # a reload loop would show within this
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == loads
    assert session.main_frame_navigations() - navigations <= 1, session.watched.navigations
    # Nothing was asked of the wallet for the new account without the user's click.
    assert len(wallet.calls_of("personal_sign")) == 1
    assert wallet.address == second.address != first

    connect(page, wallet)  # the new account connects on request
    session.check()


def test_an_unreachable_api_is_explained(web: Web) -> None:
    wallet = web.wallet()
    session: Session = web.open([wallet])
    page = session.page
    expect(page.get_by_role("button", name=CONNECT)).to_be_visible()
    page.route("**/auth/nonce", lambda route: route.abort("connectionrefused"))
    session.watched.allow_error("net::ERR_CONNECTION_REFUSED|Failed to load resource")
    page.get_by_role("button", name=CONNECT).click()
    error_says(page, "cannot be reached")
    back_on_landing(page)
    assert not wallet.calls_of("personal_sign")
    session.screenshot("api-unreachable")

    page.unroute("**/auth/nonce")
    connect(page, wallet)
    session.check()


def test_the_sign_in_signature_is_the_wallets_own(web: Web) -> None:
    """The API accepted the page's sign-in: the signature the wallet made recovers to the
    account (personal_sign signed the message's bytes, not its hex text)."""
    wallet = web.wallet()
    session = web.open([wallet])
    connect(session.page, wallet)
    (sign_in,) = wallet.calls_of("personal_sign")
    message = bytes.fromhex(sign_in.params[0].removeprefix("0x")).decode()
    login = [r for r in session.watched.requests if r.url.endswith("/auth/login")]
    assert len(login) == 1
    body = json.loads(login[0].body)
    assert body["message"] == message
    assert Account.recover_message(encode_defunct(text=message),
                                   signature=body["signature"]) == wallet.address
    session.check()
