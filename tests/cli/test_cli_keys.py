"""``kizuna keys`` through the real entry point: files, addresses, Umbral keys, failures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cli_harness import clean_env, run
from eth_account import Account

from kizuna.chain.artifacts import deployment_abi_hash
from kizuna.chain.deploy import Deployment
from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys_with_private_key
from kizuna.stack.home import KizunaHome
from kizuna.stack.keyring import Keyring

PASS = "correct horse battery staple"


def env(home: Path, passphrase: str = PASS) -> dict[str, str]:
    return clean_env(home, KIZUNA_PASSPHRASE=passphrase)


def keyring(home: Path) -> Keyring:
    """The home's keys in this process: for set-up (a key that must exist before the command
    under test), as `kizuna keys create/import --light-kdf` make them (both tested here)."""
    return Keyring(home / "keys")


def test_create_writes_a_private_keystore_that_the_passphrase_opens(home: Path) -> None:
    done = run(home, "keys", "create", "alice", "--json", env=env(home))
    assert done.code == 0, done.err
    created = done.json()
    path = home / "keys" / "alice.json"
    assert created["name"] == "alice" and Path(created["path"]) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["version"] == 3
    assert document["crypto"]["kdfparams"]["n"] == 2**18  # the standard cost by default
    key = Account.decrypt(document, PASS)
    assert Account.from_key(key).address == created["address"]
    assert PASS not in done.out + done.err


def test_list_and_address_show_every_key_without_a_passphrase(home: Path) -> None:
    for name in ("bob", "carol"):  # set-up, in process
        keyring(home).create(name, PASS, light_kdf=True)
    listed = run(home, "keys", "list", "--json", env=clean_env(home))
    assert listed.code == 0, listed.err
    rows = listed.json()
    assert [r["name"] for r in rows] == ["bob", "carol"]
    address = run(home, "keys", "address", "carol", env=clean_env(home))
    assert address.code == 0 and address.out.strip() == rows[1]["address"]
    table = run(home, "keys", "list", env=clean_env(home))
    assert "bob" in table.out and rows[0]["address"] in table.out


def test_list_of_an_empty_home_says_how_to_create_one(home: Path) -> None:
    done = run(home, "keys", "list")
    assert done.code == 0 and "kizuna keys create" in done.out
    assert run(home, "keys", "list", "--json").json() == []


def test_import_a_private_key_file_and_a_keystore(home: Path, tmp_path: Path) -> None:
    account = Account.create()
    key_file = tmp_path / "key.hex"
    key_file.write_text(account.key.hex() + "\n")
    done = run(home, "keys", "import", "clinic", "--private-key-file", str(key_file),
               "--light-kdf", "--json", env=env(home))
    assert done.code == 0, done.err
    assert done.json()["address"] == account.address
    assert account.key.hex() not in done.out + done.err

    other = Account.create()
    keystore = tmp_path / "UTC--export.json"
    keystore.write_text(json.dumps(Account.encrypt(other.key, "old pass", iterations=2**12)))
    wrong = run(home, "keys", "import", "old", "--keystore", str(keystore),
                env=env(home, "not it"))
    assert wrong.code == 4
    assert "wrong passphrase" in wrong.error_line
    assert not (home / "keys" / "old.json").exists()
    right = run(home, "keys", "import", "old", "--keystore", str(keystore), "--json",
                env=env(home, "old pass"))
    assert right.code == 0, right.err
    assert right.json()["address"] == other.address
    assert stat.S_IMODE((home / "keys" / "old.json").stat().st_mode) == 0o600


def test_a_taken_name_is_refused_and_the_key_kept(home: Path) -> None:
    keyring(home).create("dup", PASS, light_kdf=True)  # set-up, in process
    before = (home / "keys" / "dup.json").read_bytes()
    again = run(home, "keys", "create", "dup", "--light-kdf", env=env(home))
    assert again.code == 5
    assert "exists already" in again.error_line
    assert (home / "keys" / "dup.json").read_bytes() == before


@pytest.mark.parametrize("name", ["Alice", "../etc", "a b", "-x", ""])
def test_a_bad_name_is_invalid_input(home: Path, name: str) -> None:
    done = run(home, "keys", "create", name, env=env(home))
    assert done.code in (2, 6)  # "-x" is an unknown option to click: a usage error
    if done.code == 6:
        assert "name:" in done.error_line
    assert not (home / "keys").exists() or not list((home / "keys").iterdir())


def test_missing_key_is_not_found(home: Path) -> None:
    done = run(home, "keys", "address", "nobody")
    assert done.code == 3
    assert done.error_line.startswith("kizuna: error: no keystore file at")
    as_json = run(home, "keys", "address", "nobody", "--json")
    assert as_json.code == 3
    error = json.loads(as_json.error_line)["error"]
    assert error["kind"] == "KeystoreNotFound" and error["exit_code"] == 3


def test_a_corrupted_keystore_is_named(home: Path) -> None:
    (home / "keys").mkdir(parents=True)
    (home / "keys" / "broken.json").write_text('{"version": 3}')
    done = run(home, "keys", "address", "broken")
    assert done.code == 1
    assert "broken.json is corrupted" in done.error_line
    listed = run(home, "keys", "list", "--json").json()
    assert listed[0]["address"] is None and "corrupted" in listed[0]["problem"]


def test_no_passphrase_and_no_terminal_says_how_to_give_one(home: Path) -> None:
    done = run(home, "keys", "create", "eve", env=clean_env(home), stdin="")
    assert done.code == 6
    assert "KIZUNA_PASSPHRASE" in done.error_line and "--passphrase-file" in done.error_line


def test_passphrase_file_is_read_and_an_empty_one_refused(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("from a file\nignored second line\n")
    done = run(home, "keys", "create", "filed", "--light-kdf", "--passphrase-file", str(secret),
               "--json", env=clean_env(home))
    assert done.code == 0, done.err
    document = json.loads((home / "keys" / "filed.json").read_text())
    assert Account.from_key(Account.decrypt(document, "from a file")).address == \
        done.json()["address"]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    refused = run(home, "keys", "create", "e2", "--passphrase-file", str(empty))
    assert refused.code == 6 and "is empty" in refused.error_line


def test_umbral_key_matches_the_wallet_derivation_of_the_home_deployment(home: Path) -> None:
    """The key derived for the deployment at the home's own path (where `kizuna up` writes it:
    test_cli_up), its contracts at fresh random addresses: umbral-key reads only that file,
    so no chain runs for it (a `kizuna up --demo` waited for here cost ~20 s of wall)."""
    account = Account.create()
    keyring(home).import_private_key("doc", account.key.hex(), PASS, light_kdf=True)  # set-up
    a = [Account.create().address for _ in range(7)]
    deployment = Deployment(chain_id=31337, provider_registry=a[0], consent_ledger=a[1],
                            access_log=a[2], study_registry=a[3], deploy_block=1,
                            abi_hash=deployment_abi_hash(), deployer=a[4], registrar=a[5],
                            anchorer=a[6])
    deployment.save(KizunaHome(home).deployments_dir)
    done = run(home, "keys", "umbral-key", "doc", "--json", env=env(home))
    assert done.code == 0, done.err
    shown = done.json()
    expected = derive_wallet_keys_with_private_key(
        account.key, domain=KeyDerivationDomain(chain_id=deployment.chain_id,
                                                verifying_contract=deployment.consent_ledger))
    assert shown["umbral_public_key"] == "0x" + expected.public_key.to_bytes().hex()
    assert shown["umbral_verifying_key"] == "0x" + expected.verifying_key.to_bytes().hex()
    assert shown["consent_ledger"] == deployment.consent_ledger
    assert account.key.hex() not in done.out

    wrong = run(home, "keys", "umbral-key", "doc", env=env(home, "wrong"))
    assert wrong.code == 4
    assert "wrong passphrase" in wrong.error_line
    missing = run(home, "keys", "umbral-key", "ghost", env=env(home))
    assert missing.code == 3


def test_umbral_key_without_a_deployment_says_to_run_kizuna_up(home: Path) -> None:
    keyring(home).create("solo", PASS, light_kdf=True)  # set-up, in process
    done = run(home, "keys", "umbral-key", "solo", env=env(home))
    assert done.code == 3
    assert "kizuna up" in done.error_line


def test_every_keys_command_has_a_manual_with_an_example(home: Path) -> None:
    """`kizuna keys --help` through the entry point lists them; each command's manual (what its
    `--help` prints: click's get_help of the same command objects, in process rather than a
    `kizuna` process each) has an example."""
    import click

    from kizuna.cli.main import cli

    listing = run(home, "keys", "--help")
    assert listing.code == 0, listing.err
    root = click.Context(cli, info_name="kizuna")
    group = cli.get_command(root, "keys")
    assert isinstance(group, click.Group)
    group_context = click.Context(group, info_name="keys", parent=root)
    for command in ("create", "import", "address", "umbral-key", "list"):
        assert command in listing.out
        found = group.get_command(group_context, command)
        assert found is not None, command
        manual = found.get_help(click.Context(found, info_name=command, parent=group_context))
        assert "Example" in manual, command
