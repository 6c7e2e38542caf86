"""``kizuna registrar ...`` against the running stack's ProviderRegistry."""

from __future__ import annotations

from roles_stack import Stack


def test_add_suspend_reinstate(stack: Stack) -> None:
    newdoc = stack.address("newdoc")
    # newdoc's Umbral key in process, derived as `kizuna keys umbral-key newdoc` derives it
    # (that command: test_cli_keys)
    with stack.provider("newdoc") as client:
        umbral = "0x" + client.public_key.to_bytes().hex()
    added = stack.ok("registrar", "add-provider", "newdoc", "--umbral-key", umbral,
                     "--credential", "0x" + "ab" * 32, "--key", "registrar", "--json").json()
    assert added["provider"] == newdoc and added["umbral_key"] == umbral

    listed = {p["address"]: p for p in stack.ok("registrar", "providers", "--json").json()}
    assert listed[newdoc]["active"] is True
    assert listed[newdoc]["credential_commitment"] == "0x" + "ab" * 32

    stack.ok("registrar", "suspend", "newdoc", "--key", "registrar")
    listed = {p["address"]: p for p in stack.ok("registrar", "providers", "--json").json()}
    assert listed[newdoc]["active"] is False
    # a suspended provider has no provider role at sign-in: its commands are refused
    refused = stack.kizuna("provider", "patients", "--key", "newdoc")
    assert refused.code == 4, refused.err
    stack.ok("registrar", "reinstate", "newdoc", "--key", "registrar")
    assert stack.ok("provider", "patients", "--key", "newdoc", "--json").json() == []


def test_refusals(stack: Stack, tmp_path: object) -> None:
    not_registrar = stack.kizuna("registrar", "suspend", "dr-sato", "--key", "aiko")
    assert not_registrar.code == 4
    assert "not a registrar" in not_registrar.error_line
    bad_key = stack.kizuna("registrar", "add-provider", "newdoc", "--umbral-key", "0x1234",
                           "--credential", "0x" + "00" * 32, "--key", "registrar")
    assert bad_key.code == 6
    assert "umbral-key" in bad_key.error_line
    no_credential = stack.kizuna("registrar", "add-provider", "newdoc", "--umbral-key",
                                 "0x" + "02" * 33, "--credential", "missing.pdf",
                                 "--key", "registrar")
    assert no_credential.code in (3, 6)
    assert len(no_credential.err.strip().splitlines()) == 1
    unknown = stack.kizuna("registrar", "suspend", "0x" + "12" * 20, "--key", "registrar")
    assert unknown.code == 3
    assert "not a provider" in unknown.error_line
