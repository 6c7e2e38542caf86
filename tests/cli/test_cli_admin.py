"""``kizuna admin ...`` against the running stack (finding 13): the recipe of the README's
"Deploying to a real chain: roles" — the deployer's key imported into the keystore, an auditor
made with `kizuna admin grant-role`, who then signs in with the role; revoked; a key that is
not the admin refused with the contract's decoded reason; the last admin kept."""

from __future__ import annotations

from roles_stack import PASSPHRASE, Stack

from kizuna.chain.localnode import dev_private_keys

ADMIN_KEY = "deployer"
"""The demo's deployer (anvil account 0): the contracts' admin, as on a real deployment."""


def _import_deployer(stack: Stack) -> str:
    """The recipe's first step, in process: the deployer's key into the keystore, as `kizuna
    keys import deployer --private-key-file F --light-kdf` imports it (test_cli_keys)."""
    if not stack.keyring.path(ADMIN_KEY).exists():  # imported by an earlier test
        stack.keyring.import_private_key(ADMIN_KEY, dev_private_keys(1)[0], PASSPHRASE,
                                         light_kdf=True)
    return stack.address(ADMIN_KEY)


def test_grant_then_revoke_the_auditor_role(stack: Stack) -> None:
    deployer = _import_deployer(stack)
    name = "auditor-by-admin"
    auditor = stack.keyring.create(name, PASSPHRASE, light_kdf=True)  # set-up, in process

    before = stack.ok("admin", "roles", "--json").json()
    held = {(r["role"], r["contract"], r["account"]) for r in before}
    assert ("admin", "ProviderRegistry", deployer) in held
    assert ("admin", "AccessLog", deployer) in held
    registrar = stack.address("registrar")
    assert ("registrar", "ProviderRegistry", registrar) in held
    assert any(role == "anchorer" for role, _, _ in held)
    assert ("auditor", "AccessLog", auditor) not in held
    # without the role, the API refuses the auditor's commands
    refused = stack.kizuna("audit", "log", "--key", name)
    assert refused.code == 4 and "auditor role" in refused.error_line

    granted = stack.ok("admin", "grant-role", "auditor", name, "--key", ADMIN_KEY,
                       "--json").json()
    assert [(g["role"], g["contract"], g["account"], g["changed"]) for g in granted] == [
        ("auditor", "AccessLog", auditor, True)]
    assert granted[0]["tx_hash"].startswith("0x")
    listed = stack.ok("admin", "roles", "--role", "auditor", "--json").json()
    assert auditor in {r["account"] for r in listed}
    assert {r["role"] for r in listed} == {"auditor"}
    # the new auditor signs in with the role and reads the log over the API
    log = stack.ok("audit", "log", "--key", name, "--json").json()
    assert isinstance(log, list) and log
    # granting again changes nothing (no transaction)
    again = stack.ok("admin", "grant-role", "auditor", auditor, "--key", ADMIN_KEY,
                     "--json").json()
    assert again[0]["changed"] is False and again[0]["tx_hash"] is None

    revoked = stack.ok("admin", "revoke-role", "auditor", name, "--key", ADMIN_KEY,
                       "--json").json()
    assert revoked[0]["changed"] is True
    assert auditor not in {r["account"] for r in stack.ok("admin", "roles", "--role",
                                                           "auditor", "--json").json()}
    refused = stack.kizuna("audit", "log", "--key", name)
    assert refused.code == 4 and "auditor role" in refused.error_line


def test_a_key_that_is_not_the_admin_is_refused(stack: Stack) -> None:
    _import_deployer(stack)
    aiko = stack.address("aiko")
    refused = stack.kizuna("admin", "grant-role", "auditor", aiko, "--key", "aiko")
    assert refused.code == 4, refused.err
    line = refused.error_line
    assert "may not grant the auditor role on AccessLog" in line
    assert "AccessControlUnauthorizedAccount" in line and "lacks the admin role" in line
    # the registrar may verify providers but not make registrars
    refused = stack.kizuna("admin", "grant-role", "registrar", aiko, "--key", "registrar")
    assert refused.code == 4 and "ProviderRegistry" in refused.error_line
    assert aiko not in {r["account"] for r in stack.ok("admin", "roles", "--json").json()}


def test_the_last_admin_cannot_be_revoked(stack: Stack) -> None:
    deployer = _import_deployer(stack)
    refused = stack.kizuna("admin", "revoke-role", "admin", deployer, "--key", ADMIN_KEY)
    assert refused.code == 6, refused.err
    assert "only admin" in refused.error_line
    bad = stack.kizuna("admin", "grant-role", "owner", deployer, "--key", ADMIN_KEY)
    assert bad.code == 2  # not a role: a usage error naming the choices
    assert "admin" in bad.err and "auditor" in bad.err
