"""``kizuna keys``: create, import, list and inspect the encrypted keys in ``$KIZUNA_HOME/keys``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kizuna.cli.options import (
    home_option,
    passphrase_option,
    read_passphrase,
    resolve_home,
    unlock_key,
)
from kizuna.cli.output import Column, emit, json_option, print_facts, print_table
from kizuna.errors import InputError, NotFoundError
from kizuna.stack.home import KizunaHome, load_settings
from kizuna.stack.keyring import Keyring


def _keyring(home_dir: Path | None) -> tuple[KizunaHome, Keyring]:
    home = resolve_home(home_dir)
    return home, Keyring(home.keys_dir)


@click.group("keys")
def keys() -> None:
    """Your keys: Ethereum accounts kept encrypted in $KIZUNA_HOME/keys/NAME.json.

    Each key is an Ethereum keystore (v3, scrypt), mode 0600, unlocked by a passphrase that
    never appears on the command line: --passphrase-file FILE, else $KIZUNA_PASSPHRASE, else a
    prompt. The same account signs your consent actions and (through one signature) derives
    your encryption keys, exactly as a browser wallet does.

    \b
    Examples:
      kizuna keys create alice
      kizuna keys import clinic --private-key-file ./clinic.hex
      kizuna keys list
      kizuna keys umbral-key alice
    """


@keys.command("create")
@click.argument("name")
@passphrase_option
@click.option("--light-kdf", is_flag=True,
              help="Cheap scrypt (N=2^14) for throw-away keys and tests; weaker against "
                   "passphrase guessing if the file leaks.")
@home_option
@json_option
def create(name: str, passphrase_file: Path | None, light_kdf: bool, home_dir: Path | None,
           as_json: bool) -> None:
    """Create a new random key named NAME.

    Asks for a passphrase twice (or reads it, see `kizuna keys --help`) and writes
    $KIZUNA_HOME/keys/NAME.json. Refuses to replace an existing key.

    \b
    Example:
      kizuna keys create alice
      KIZUNA_PASSPHRASE=... kizuna keys create bob --json
    """
    _, ring = _keyring(home_dir)
    path = ring.free_path(name)  # a bad or taken name fails before any prompt
    passphrase = read_passphrase(passphrase_file, confirm=True)
    address = ring.create(name, passphrase, light_kdf=light_kdf)
    result = {"name": name, "address": address, "path": path}
    emit(result, human=lambda: print_facts(result, title=f"Created key {name}"))


@keys.command("import")
@click.argument("name")
@click.option("--private-key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file holding the private key as hex (64 digits, 0x optional).")
@click.option("--keystore", "keystore_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A keystore v3 JSON file (geth, MetaMask export) to copy; its passphrase "
                   "stays the same.")
@passphrase_option
@click.option("--light-kdf", is_flag=True, help="Cheap scrypt, as for `keys create`.")
@home_option
@json_option
def import_(name: str, private_key_file: Path | None, keystore_file: Path | None,
            passphrase_file: Path | None, light_kdf: bool, home_dir: Path | None,
            as_json: bool) -> None:
    """Import an existing account as NAME.

    From a private key (--private-key-file, or typed at a hidden prompt; never as an argument)
    encrypted under a new passphrase, or from an existing keystore file (--keystore), checked
    with its passphrase and copied.

    \b
    Examples:
      kizuna keys import clinic --private-key-file ./clinic.hex
      kizuna keys import old --keystore ~/Downloads/UTC--2024-...--abcd.json
    """
    _, ring = _keyring(home_dir)
    if private_key_file is not None and keystore_file is not None:
        raise InputError("--keystore", "give either --private-key-file or --keystore")
    path = ring.free_path(name)
    if keystore_file is not None:
        if not keystore_file.is_file():
            raise NotFoundError(f"no keystore file at {keystore_file}")
        passphrase = read_passphrase(passphrase_file, prompt="Passphrase of the keystore")
        address = ring.import_keystore(name, keystore_file, passphrase)
    else:
        secret = _read_private_key(private_key_file)
        passphrase = read_passphrase(passphrase_file, confirm=True)
        address = ring.import_private_key(name, secret, passphrase, light_kdf=light_kdf)
    result = {"name": name, "address": address, "path": path}
    emit(result, human=lambda: print_facts(result, title=f"Imported key {name}"))


def _read_private_key(path: Path | None) -> str:
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NotFoundError(f"no private-key file at {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError("private-key-file", f"unreadable: {exc.__class__.__name__}") from None
        if not text:
            raise InputError("private-key-file", f"{path} is empty")
        return text
    if not sys.stdin.isatty():
        raise InputError("private-key", "none given: use --private-key-file (or a terminal)")
    value: str = click.prompt("Private key (hex)", hide_input=True, err=True)
    return value.strip()


@keys.command("address")
@click.argument("name")
@home_option
@json_option
def address(name: str, home_dir: Path | None, as_json: bool) -> None:
    """Print the Ethereum address of key NAME (no passphrase needed).

    \b
    Example:
      kizuna keys address alice
      cast balance $(kizuna keys address alice)
    """
    _, ring = _keyring(home_dir)
    found = ring.address(name)
    emit({"name": name, "address": found}, human=lambda: click.echo(found))


@keys.command("umbral-key")
@click.argument("name")
@passphrase_option
@click.option("--deployment", "deployment_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Deployment file naming the chain id and ConsentLedger (default: the "
                   "configured one, $KIZUNA_HOME/deployments/31337.json after `kizuna up`).")
@home_option
@json_option
def umbral_key(name: str, passphrase_file: Path | None, deployment_file: Path | None,
               home_dir: Path | None, as_json: bool) -> None:
    """Print the Umbral public keys derived from key NAME's wallet signature.

    The keys follow from the account's signature over a fixed EIP-712 message bound to the
    chain id and the ConsentLedger address, so they depend on the deployment. The public key
    is what records are encrypted to and what a provider publishes in the provider registry;
    the verifying key checks the key fragments this account signs. Nothing secret is printed.

    \b
    Example:
      kizuna keys umbral-key dr-tanaka
    """
    home = resolve_home(home_dir)
    if deployment_file is None:
        # Only the deployment path is needed here, not a servable configuration: the
        # service's checks (a real session secret outside development) do not apply.
        configured = load_settings(home, environment="development").deployment_file
        if configured is None:
            raise NotFoundError("no deployment configured: run `kizuna up` or set "
                                "KIZUNA_DEPLOYMENT_FILE")
        deployment_file = configured
    if not deployment_file.is_file():
        raise NotFoundError(f"no deployment file at {deployment_file}: start the local stack "
                            "with `kizuna up`, or give --deployment / KIZUNA_DEPLOYMENT_FILE")
    from kizuna.chain.connection import load_deployment_file
    from kizuna.client.keys import participant_keys
    from kizuna.crypto.wallet_keys import KeyDerivationDomain

    deployment = load_deployment_file(deployment_file)
    signer = unlock_key(home, name, passphrase_file)
    domain = KeyDerivationDomain(chain_id=deployment.chain_id,
                                 verifying_contract=deployment.consent_ledger)
    derived = participant_keys(signer, domain)
    result = {
        "name": name,
        "address": signer.address,
        "umbral_public_key": "0x" + derived.public_key.to_bytes().hex(),
        "umbral_verifying_key": "0x" + derived.verifying_key.to_bytes().hex(),
        "chain_id": deployment.chain_id,
        "consent_ledger": deployment.consent_ledger,
    }
    emit(result, human=lambda: print_facts(result, title=f"Umbral keys of {name}"))


@keys.command("list")
@home_option
@json_option
def list_(home_dir: Path | None, as_json: bool) -> None:
    """List the keys in $KIZUNA_HOME/keys: name, address, file, last change.

    Files that cannot be read, or that others may read, are listed with the problem.

    \b
    Example:
      kizuna keys list --json | jq -r '.[].address'
    """
    _, ring = _keyring(home_dir)
    entries = ring.entries()
    rows = [{"name": e.name, "address": e.address, "path": e.path,
             "modified": e.modified.strftime("%Y-%m-%d %H:%M UTC"), "problem": e.problem}
            for e in entries]
    emit(rows, human=lambda: print_table(
        rows, [Column("name", "Name", "bold"), Column("address", "Address"),
               Column("modified", "Changed"), Column("problem", "Problem", "red")],
        title=f"Keys in {ring.directory}",
        empty=f"no keys in {ring.directory} (create one: kizuna keys create NAME)"))


__all__ = ["keys"]
