"""``kizuna registrar``: verify, suspend and reinstate providers in the ProviderRegistry.

The registrar's actions are the registrar's own transactions, sent with their key straight to
the chain (no service involved): a provider entry holds the provider's Umbral public key (what
patients' grants are made for) and a commitment to the credential the registrar checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kizuna.cli.output import Column, emit, json_option, print_facts, print_table
from kizuna.cli.participant import (
    RoleArgs,
    chain_options,
    connect_chain,
    hex32,
    resolve_participant,
    settings_of,
    show_time,
    unlock,
)
from kizuna.errors import AccessDenied, InputError, NotFoundError


def _hex_bytes(value: str, *, field: str) -> bytes:
    text = value.strip().removeprefix("0x")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(field, f"{value!r} is not hex") from None


def credential_commitment(value: str) -> bytes:
    """``value`` as a 32-byte hex commitment, else keccak-256 of the file it names."""
    from eth_utils.crypto import keccak

    text = value.strip().removeprefix("0x")
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    path = Path(value)
    if not path.is_file():
        raise NotFoundError(f"credential {value!r} is neither a 32-byte hex commitment nor a "
                            "file")
    return bytes(keccak(path.read_bytes()))


def _registrar_session(kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    args = RoleArgs.take(kwargs)
    home, settings = settings_of(args)
    chain = connect_chain(settings)
    signer = unlock(args, home)
    if not chain.registry.is_registrar(signer.address):
        raise AccessDenied(f"{signer.address} is not a registrar of this deployment's "
                           "ProviderRegistry")
    return home, chain, signer


@click.group("registrar")
def registrar() -> None:
    """The registrar's side: who counts as a verified provider.

    Commands send the registrar's own transactions to the configured chain (--key NAME of an
    account holding the registry's registrar role). A provider's Umbral key is the one
    `kizuna keys umbral-key NAME` prints for the provider's account.

    \b
    Examples:
      export KIZUNA_KEY=registrar KIZUNA_PASSPHRASE=kizuna-demo
      kizuna registrar add-provider 0xAbC... --umbral-key 0x02ab... --credential licence.pdf
      kizuna registrar suspend 0xAbC...
      kizuna registrar providers
    """


@registrar.command("add-provider")
@click.argument("address")
@click.option("--umbral-key", required=True, metavar="HEX",
              help="The provider's Umbral public key (33 bytes, `kizuna keys umbral-key`).")
@click.option("--credential", required=True, metavar="FILE|HEX",
              help="The credential you checked: a file (its keccak-256 is recorded) or a "
                   "32-byte hex commitment. Only the commitment goes on-chain.")
@chain_options
@json_option
def add_provider(address: str, umbral_key: str, credential: str, as_json: bool,
                 **kwargs: Any) -> None:
    """Verify the provider at ADDRESS (or key name) in the registry.

    \b
    Example:
      kizuna registrar add-provider dr-kato --umbral-key 0x03f1... --credential licence.pdf
    """
    from kizuna.crypto import pre

    key = pre.UmbralPublicKey.from_bytes(_hex_bytes(umbral_key, field="umbral-key"),
                                         field="umbral-key")
    commitment = credential_commitment(credential)
    home, chain, signer = _registrar_session(kwargs)
    who = resolve_participant(address, home=home, field="provider")
    receipt = chain.registry.add_provider(who, key.to_bytes(), commitment, signer=signer)
    result = {"provider": who, "umbral_key": hex32(key.to_bytes()),
              "credential_commitment": hex32(commitment), "tx_hash": hex32(receipt.tx_hash),
              "block_number": receipt.block_number}
    emit(result, human=lambda: print_facts(result, title="Provider verified"))


def _set_state(address: str, kwargs: dict[str, Any], *, active: bool) -> None:
    home, chain, signer = _registrar_session(kwargs)
    who = resolve_participant(address, home=home, field="provider")
    if chain.registry.provider_of(who) is None:
        raise NotFoundError(f"{who} is not a provider in the registry")
    registry = chain.registry
    receipt = (registry.reinstate_provider(who, signer=signer) if active
               else registry.suspend_provider(who, signer=signer))
    result = {"provider": who, "active": active, "tx_hash": hex32(receipt.tx_hash),
              "block_number": receipt.block_number}
    emit(result, human=lambda: print_facts(
        result, title="Provider reinstated" if active else "Provider suspended"))


@registrar.command("suspend")
@click.argument("address")
@chain_options
@json_option
def suspend(address: str, as_json: bool, **kwargs: Any) -> None:
    """Suspend a provider: from the next block, reads under its grants are refused.

    \b
    Example:
      kizuna registrar suspend dr-sato --key registrar
    """
    _set_state(address, kwargs, active=False)


@registrar.command("reinstate")
@click.argument("address")
@chain_options
@json_option
def reinstate(address: str, as_json: bool, **kwargs: Any) -> None:
    """Reinstate a suspended provider.

    \b
    Example:
      kizuna registrar reinstate dr-sato --key registrar
    """
    _set_state(address, kwargs, active=True)


@registrar.command("providers")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Configuration file (default: $KIZUNA_CONFIG, else $KIZUNA_HOME/config.toml).")
@click.option("--home", "home_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Kizuna home directory (default: $KIZUNA_HOME, else ~/.kizuna).")
@json_option
def providers(config_file: Path | None, home_dir: Path | None, as_json: bool) -> None:
    """List every provider of the registry (from the chain's events; no key needed).

    \b
    Example:
      kizuna registrar providers --json | jq -r '.[] | select(.active) | .address'
    """
    from kizuna.chain.index.store import EventIndex

    args = RoleArgs(key_name=None, passphrase_file=None, home_dir=home_dir,
                    config_file=config_file, api_url=None, local=False)
    _, settings = settings_of(args)
    chain = connect_chain(settings)
    index = EventIndex.for_chain(chain, ":memory:")
    try:
        index.sync()
        found = index.providers()
    finally:
        index.close()
    rows = [{"address": p.address, "active": p.active,
             "umbral_key": hex32(p.umbral_public_key),
             "credential_commitment": hex32(p.credential_commitment),
             "registered_block": p.registered_block,
             "registered": show_time(p.registered_at) if p.registered_at else None}
            for p in found]
    emit(rows, human=lambda: print_table(
        rows, [Column("address", "Provider"), Column("active", "Active"),
               Column("registered_block", "Block")],
        title="Registered providers", empty="no providers registered"))


__all__ = ["credential_commitment", "registrar"]
