"""``kizuna demo``: the consent ledger working end to end on a throw-away local chain.

Starts anvil on 127.0.0.1 (or uses ``--rpc-url``), deploys the contracts, lets a registrar
verify a provider, a patient register a record and grant the provider one blinded scope, the
provider log a care event, the patient revoke — and shows the provider refused afterwards. It then
prints the audit log of the chain and stops the node. Nothing here is health data: the record id
is random, the content is a commitment to (stand-in) ciphertext, the scope is a keyed hash of its
label under the patient's wallet-derived scope key.

Every step goes through the layers the service and the other commands use: the contract agents
and their transaction sender (``kizuna.chain``), the patient's keys as a wallet derives them and
the one scope-blinding rule (``kizuna.crypto``), the relayer for the signed grant, and the audit
log reader of ``kizuna audit log`` (``kizuna.services.audit.full_log``) for the events.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from eth_utils.crypto import keccak

from kizuna.chain.models import CareEventKind
from kizuna.crypto.scopes import blind_scope
from kizuna.errors import ChainError, ContractReverted
from kizuna.types import Commitment, RecordId, ScopeId

if TYPE_CHECKING:  # web3 and eth_account: imported by the functions that run the demo, so
    from kizuna.chain.connection import Chain  # `kizuna --help` does not load them
    from kizuna.chain.signers import LocalKeySigner

LAB = "Observation:laboratory"
IMAGING = "ImagingStudy"


class _Names:
    """What the demo knows and the chain does not: who each address is, what each blinded scope
    id stands for. Used to label what the chain returns."""

    def __init__(self) -> None:
        self.addresses: dict[str, str] = {}
        self.scopes: dict[bytes, str] = {}
        self.roles: dict[bytes, str] = {}

    def address(self, value: str | None) -> str:
        if not value:
            return "-"
        name = self.addresses.get(value)
        return f"{name} ({value[:8]}…)" if name else f"{value[:8]}…{value[-4:]}"

    def scope(self, scope_id: bytes) -> str:
        label = self.scopes.get(bytes(scope_id))
        shown = "0x" + bytes(scope_id).hex()[:8] + "…"
        return f"{shown} ('{label}')" if label else shown

    def value(self, name: str, value: Any) -> str:
        """An error or event argument, labelled where the demo knows what it is."""
        if isinstance(value, str) and value in self.addresses:
            return self.address(value)
        if name == "role" and isinstance(value, bytes | bytearray) and bytes(value) in self.roles:
            return self.roles[bytes(value)]
        if isinstance(value, bytes | bytearray) and bytes(value) in self.scopes:
            return self.scope(bytes(value))
        if isinstance(value, bytes | bytearray):
            return "0x" + bytes(value).hex()[:8] + "…"
        if name == "kind" and isinstance(value, int):
            return CareEventKind(value).name
        return str(value)


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


@contextmanager
def _node(rpc_url: str | None) -> Iterator[str]:
    from kizuna.chain.localnode import LocalNode

    if rpc_url:
        yield rpc_url
        return
    with LocalNode() as node:
        yield node.rpc_url


def _step(text: str) -> None:
    click.echo(click.style(f"\n▸ {text}", bold=True))


def _fact(label: str, value: object) -> None:
    click.echo(f"    {label:<22} {value}")


@click.command("demo")
@click.option(
    "--rpc-url",
    default=None,
    help="Use this JSON-RPC node (funded with anvil's dev accounts) instead of starting anvil.",
)
def demo(rpc_url: str | None) -> None:
    """Show the consent ledger at work on a throw-away local chain (anvil)."""
    from eth_account import Account

    from kizuna.chain.agents.base import DEFAULT_ADMIN_ROLE
    from kizuna.chain.connection import connect, web3_for
    from kizuna.chain.deploy import deploy
    from kizuna.chain.localnode import dev_private_keys
    from kizuna.chain.signers import LocalKeySigner

    keys = dev_private_keys(4)
    registrar, patient, provider, relayer = (LocalKeySigner(k) for k in keys)
    names = _Names()
    for who, signer in (("registrar", registrar), ("patient", patient),
                        ("provider", provider), ("relayer", relayer)):
        names.addresses[signer.address] = who
    with _node(rpc_url) as url:
        _step(f"Local Ethereum node (anvil) on {url}")
        w3 = web3_for(url, timeout=60.0)
        _fact("chain id", w3.eth.chain_id)

        _step("Deploying the contracts (committed artifacts, no compiler needed)")
        deployment = deploy(w3, Account.from_key(keys[0]), directory=None)
        for name, address in deployment.addresses.items():
            _fact(name, address)
            names.addresses[address] = name
        chain = connect(w3, deployment)
        # The roles by the contracts' own views, to name them in the log.
        names.roles = {DEFAULT_ADMIN_ROLE: "DEFAULT_ADMIN_ROLE",
                       chain.registry.registrar_role(): "REGISTRAR_ROLE",
                       chain.access_log.anchor_role(): "ANCHOR_ROLE",
                       chain.access_log.auditor_role(): "AUDITOR_ROLE"}
        _story(chain, names, keys=keys, registrar=registrar, patient=patient,
               provider=provider, relayer=relayer)
        if rpc_url is None:
            _step("Stopping the local node")
    click.echo("\nDone. Next: `kizuna --help`.")


def _story(chain: Chain, names: _Names, *, keys: list[str], registrar: LocalKeySigner,
           patient: LocalKeySigner, provider: LocalKeySigner, relayer: LocalKeySigner) -> None:
    """The demo's steps on a deployed chain, each one call of an agent (or the relayer)."""
    from kizuna.chain.eip712 import SignedAction
    from kizuna.chain.relayer import Relayer
    from kizuna.crypto.wallet_keys import KeyDerivationDomain, derive_wallet_keys_with_private_key

    ledger = chain.ledger
    # The keys a wallet derives for this chain and ledger: the provider's Umbral key is the
    # one it registers; the patient's scope key blinds scope labels and never leaves her.
    domain = KeyDerivationDomain(chain_id=chain.chain_id,
                                 verifying_contract=chain.deployment.consent_ledger)
    patient_keys = derive_wallet_keys_with_private_key(keys[1], domain=domain)
    provider_keys = derive_wallet_keys_with_private_key(keys[2], domain=domain)

    _step("A registrar verifies a provider (Umbral public key + credential commitment)")
    umbral_key = provider_keys.public_key.to_bytes()
    chain.registry.add_provider(provider.address, umbral_key,
                                keccak(b"licence #4711, stand-in"), signer=registrar)
    _fact("provider", names.address(provider.address))
    _fact("umbral key", "0x" + umbral_key.hex()[:20] + "…  (derived from its wallet)")
    _fact("active", chain.registry.is_active_provider(provider.address))

    _step("The patient registers a record: random id, commitment to its ciphertext, blind scope")
    scope = blind_scope(patient_keys.scope_key, LAB)
    names.scopes[bytes(scope)] = LAB
    record_id = RecordId(os.urandom(32))
    ciphertext = os.urandom(256)  # stand-in for an encrypted FHIR Observation
    commitment = Commitment(keccak(ciphertext))
    ledger.register_record(record_id, commitment, scope, signer=patient)
    _fact("record id", "0x" + record_id.hex())
    _fact("commitment", "0x" + commitment.hex())
    _fact("scope (blinded)", "0x" + scope.hex() + f"  ← '{LAB}'")

    _step("The patient grants the provider that scope for 30 days")
    now = chain.head().timestamp
    receipt = ledger.grant(provider.address, scope, now + 30 * 86_400, signer=patient)
    _fact("gas used", f"{receipt.gas_used:,}")
    _fact("hasAccess", ledger.has_access(patient.address, provider.address, scope))
    _fact("accessExpiry",
          _when(ledger.access_expiry(patient.address, provider.address, scope)))

    _step("Gasless: the patient signs a grant (EIP-712); a relayer pays and submits it")
    imaging = blind_scope(patient_keys.scope_key, IMAGING)
    names.scopes[bytes(imaging)] = IMAGING
    typed = ledger.grant_typed_data(patient=patient.address, provider=provider.address,
                                    scope_id=imaging, expires_at=now + 7 * 86_400,
                                    deadline=chain.head().timestamp + 600)
    action = SignedAction(typed=typed, signature=patient.sign_typed_data(typed))
    receipt = Relayer(chain, relayer).relay(action)
    _fact("relayed by", names.address(relayer.address))
    _fact("gas used", f"{receipt.gas_used:,}  (paid by the relayer)")
    _fact("hasAccess (imaging)", ledger.has_access(patient.address, provider.address, imaging))
    _fact("patient's next nonce", ledger.nonce(patient.address))

    _step("The provider, holding a live grant, logs a visit report (a care event)")
    report = Commitment(keccak(os.urandom(128)))  # commitment to a report encrypted to her
    ledger.log_care_event(patient.address, CareEventKind.VISIT_REPORTED, report,
                          signer=provider, provider=provider.address, scope_id=scope)
    _fact("ref", "0x" + report.hex() + "  (commitment to the encrypted report)")

    _step("The patient revokes the grant")
    receipt = ledger.revoke(provider.address, scope, signer=patient)
    _fact("gas used", f"{receipt.gas_used:,}")
    _fact("hasAccess", ledger.has_access(patient.address, provider.address, scope))
    _fact("provider logs again", "refused: " + _refusal(chain, names, patient=patient,
                                                         provider=provider, scope=scope,
                                                         report=report))

    _step("The audit log (what `kizuna audit log` reads from the chain; no health data in it)")
    _print_log(chain, names)


def _refusal(chain: Chain, names: _Names, *, patient: LocalKeySigner,
             provider: LocalKeySigner, scope: ScopeId, report: Commitment) -> str:
    """The ledger's decoded refusal of the provider's care event after the revoke; a
    :class:`ChainError` (the command fails) if the ledger would accept it."""
    call = chain.ledger.log_care_event_call(patient.address, CareEventKind.VISIT_REPORTED,
                                            report, provider=provider.address, scope_id=scope)
    try:
        chain.sender.simulate(call, sender=provider.address)
    except ContractReverted as refused:
        shown = ", ".join(f"{k}={names.value(k, v)}" for k, v in refused.error_args.items())
        return f"{refused.name}({shown})"
    raise ChainError("the ledger would accept the provider's care event after the patient "
                     "revoked its grant: consent is not enforced on this chain")


def _print_log(chain: Chain, names: _Names) -> None:
    from kizuna.services.audit import full_log

    for entry in full_log(chain, from_chain=True):
        parts = [f"block {entry.block_number:>3}", f"{entry.event:<22}"]
        if entry.patient:
            parts.append(f"patient={names.address(entry.patient)}")
        if entry.provider:
            parts.append(f"provider={names.address(entry.provider)}")
        if entry.scope_ids:
            parts.append("scope=" + ", ".join(names.scope(s) for s in entry.scope_ids))
        if entry.record_id:
            parts.append(f"record=0x{entry.record_id.hex()[:8]}…")
        if entry.expires_at:
            parts.append(f"until={_when(entry.expires_at)}")
        if entry.actor:
            parts.append(f"by={names.address(entry.actor)}")
        parts.extend(_details(entry.details, names))
        click.echo("    " + "  ".join(parts))


def _details(details: Mapping[str, Any], names: _Names) -> list[str]:
    shown = []
    for key, value in details.items():
        if isinstance(value, str) and value.startswith("0x") and value not in names.addresses:
            with suppress(ValueError):  # a hash or key: shown short
                value = bytes.fromhex(value[2:])
        shown.append(f"{key}={names.value(key, value)}")
    return shown


__all__ = ["demo"]
