"""``kizuna demo``: the consent ledger working end to end on a throw-away local chain.

Starts anvil on 127.0.0.1 (or uses ``--rpc-url``), deploys the three contracts, lets a registrar
verify a provider, a patient register a record and grant the provider one blinded scope, the
provider log a care event, the patient revoke — and shows the provider refused afterwards. It then
prints every on-chain event as a log and stops the node. Nothing here is health data: the record
id is random, the content is a commitment to (stand-in) ciphertext, the scope is a keyed hash of
its label under a key only the patient holds.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from kizuna.chain.artifacts import load_artifact
from kizuna.chain.deploy import Deployment, deploy
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.errors import TransactionError

CARE_KINDS = (
    "AdviceRequested",
    "AccessRequested",
    "BookingRequested",
    "BookingConfirmed",
    "BookingCancelled",
    "VisitReported",
    "PrescriptionIssued",
    "DataSent",
)
ROLE_NAMES = {
    b"\0" * 32: "DEFAULT_ADMIN_ROLE",
    keccak(text="KIZUNA_REGISTRAR_ROLE"): "REGISTRAR_ROLE",
    keccak(text="KIZUNA_ANCHOR_ROLE"): "ANCHOR_ROLE",
}
TIME_FIELDS = {"expiresAt", "until", "openUntil", "fromTime", "toTime"}


def blind_scope(patient_scope_key: bytes, label: str) -> bytes:
    """A scope id as the chain sees it: HMAC-SHA256 of the label under the patient's key."""
    return hmac.new(patient_scope_key, label.encode(), hashlib.sha256).digest()


class _Chain:
    """Plain web3 contract objects plus a locally signing ``send`` (the demo's only tool)."""

    def __init__(self, w3: Web3, deployment: Deployment, labels: dict[str, str]) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.labels = labels
        self.contracts: dict[str, Contract] = {
            name: w3.eth.contract(address=address, abi=load_artifact(name).abi_list)
            for name, address in deployment.addresses.items()
        }

    @property
    def ledger(self) -> Contract:
        return self.contracts["ConsentLedger"]

    @property
    def registry(self) -> Contract:
        return self.contracts["ProviderRegistry"]

    def send(self, account: LocalAccount, call: Any) -> Any:
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            }
        )
        signed = account.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60
        )
        if receipt["status"] != 1:
            raise TransactionError(f"demo transaction {call.fn_name} failed")
        return receipt

    def decode_revert(self, data: str) -> str:
        """``Name(arg=value, ...)`` for a custom error's revert data."""
        raw = bytes.fromhex(data.removeprefix("0x"))
        for contract in self.contracts.values():
            for entry in contract.abi:
                if entry["type"] != "error":
                    continue
                types = [i["type"] for i in entry["inputs"]]
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                if raw[:4] == selector:
                    values = abi_decode(types, raw[4:])
                    shown = ", ".join(
                        f"{i['name']}={self.show(i['name'], v)}"
                        for i, v in zip(entry["inputs"], values, strict=True)
                    )
                    return f"{entry['name']}({shown})"
        return f"unknown revert 0x{raw.hex()}"

    def show(self, name: str, value: Any) -> str:
        if isinstance(value, str) and Web3.is_address(value):
            value = Web3.to_checksum_address(value)
            label = self.labels.get(value)
            return f"{label} ({value[:8]}…)" if label else f"{value[:8]}…{value[-4:]}"
        if name == "role" and isinstance(value, bytes) and value in ROLE_NAMES:
            return ROLE_NAMES[value]
        if isinstance(value, bytes):
            return "0x" + value.hex()[:8] + "…" if len(value) > 6 else "0x" + value.hex()
        if isinstance(value, list | tuple):
            return "[" + ", ".join(self.show(name, v) for v in value) + "]"
        if name in TIME_FIELDS and isinstance(value, int) and value > 0:
            return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")
        if name == "kind" and isinstance(value, int) and value < len(CARE_KINDS):
            return CARE_KINDS[value]
        return str(value)

    def event_log(self) -> Iterator[str]:
        """Every Kizuna event since the deployment, one line each, in chain order."""
        by_topic: dict[tuple[str, bytes], tuple[str, Any]] = {}
        for name, contract in self.contracts.items():
            for event in contract.all_events():
                abi = event.abi
                signature = f"{abi['name']}({','.join(i['type'] for i in abi['inputs'])})"
                by_topic[(contract.address, keccak(text=signature))] = (name, event)
        logs = self.w3.eth.get_logs(
            {
                "fromBlock": self.deployment.deploy_block,
                "toBlock": "latest",
                "address": list(self.deployment.addresses.values()),
            }
        )
        for log in logs:
            address = Web3.to_checksum_address(log["address"])
            found = by_topic.get((address, bytes(log["topics"][0])))
            if found is None:
                continue
            contract_name, event = found
            decoded = event.process_log(log)
            args = "  ".join(f"{k}={self.show(k, v)}" for k, v in decoded["args"].items())
            yield f"block {log['blockNumber']:>3}  {contract_name}.{decoded['event']}  {args}"


@contextmanager
def _node(rpc_url: str | None) -> Iterator[str]:
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
    keys = dev_private_keys(4)
    registrar, patient, provider, relayer = (Account.from_key(k) for k in keys)
    labels = {
        registrar.address: "registrar",
        patient.address: "patient",
        provider.address: "provider",
        relayer.address: "relayer",
    }
    with _node(rpc_url) as url:
        _step(f"Local Ethereum node (anvil) on {url}")
        w3 = Web3(Web3.HTTPProvider(url))
        _fact("chain id", w3.eth.chain_id)

        _step("Deploying the contracts (committed artifacts, no compiler needed)")
        deployment = deploy(w3, registrar, directory=None)
        for name, address in deployment.addresses.items():
            _fact(name, address)
            labels[address] = name
        chain = _Chain(w3, deployment, labels)

        _step("A registrar verifies a provider (Umbral public key + credential commitment)")
        umbral_key = _umbral_public_key()
        chain.send(
            registrar,
            chain.registry.functions.addProvider(
                provider.address, umbral_key, keccak(b"licence #4711, stand-in")
            ),
        )
        _fact("provider", provider.address)
        _fact("umbral key", "0x" + umbral_key.hex()[:20] + "…")
        _fact("active", chain.registry.functions.isActiveProvider(provider.address).call())

        _step(
            "The patient registers a record: random id, commitment to its ciphertext, blind scope"
        )
        scope_key = secrets.token_bytes(32)  # the patient's scope-blinding key: never on-chain
        scope = blind_scope(scope_key, "Observation:laboratory")
        record_id = os.urandom(32)
        ciphertext = os.urandom(256)  # stand-in for an encrypted FHIR Observation
        chain.send(
            patient, chain.ledger.functions.registerRecord(record_id, keccak(ciphertext), scope)
        )
        _fact("record id", "0x" + record_id.hex())
        _fact("commitment", "0x" + keccak(ciphertext).hex())
        _fact("scope (blinded)", "0x" + scope.hex() + "  ← 'Observation:laboratory'")

        _step("The patient grants the provider that scope for 30 days")
        now = int(w3.eth.get_block("latest")["timestamp"])
        receipt = chain.send(
            patient, chain.ledger.functions.grant(provider.address, scope, now + 30 * 86_400)
        )
        _fact("gas used", f"{receipt['gasUsed']:,}")
        has = chain.ledger.functions.hasAccess(patient.address, provider.address, scope).call()
        expiry = chain.ledger.functions.accessExpiry(
            patient.address, provider.address, scope
        ).call()
        _fact("hasAccess", has)
        _fact("accessExpiry", chain.show("expiresAt", expiry))

        _step("Gasless: the patient signs a grant (EIP-712); a relayer pays and submits it")
        imaging = blind_scope(scope_key, "ImagingStudy")
        deadline = int(w3.eth.get_block("latest")["timestamp"]) + 600
        expires_at = now + 7 * 86_400
        signature = _sign_grant(chain, patient, provider.address, imaging, expires_at, deadline)
        receipt = chain.send(
            relayer,
            chain.ledger.functions.grantBySig(
                patient.address, provider.address, imaging, expires_at, deadline, signature
            ),
        )
        _fact("relayed by", chain.show("", relayer.address))
        _fact("gas used", f"{receipt['gasUsed']:,}  (paid by the relayer)")
        _fact(
            "hasAccess (imaging)",
            chain.ledger.functions.hasAccess(patient.address, provider.address, imaging).call(),
        )
        _fact("patient's next nonce", chain.ledger.functions.nonces(patient.address).call())

        _step("The provider, holding a live grant, logs a visit report (a care event)")
        report = os.urandom(128)  # stand-in for a report encrypted to the patient
        chain.send(
            provider,
            chain.ledger.functions.logCareEvent(
                patient.address, 5, keccak(report), provider.address, scope
            ),
        )
        _fact("ref", "0x" + keccak(report).hex() + "  (commitment to the encrypted report)")

        _step("The patient revokes the grant")
        receipt = chain.send(patient, chain.ledger.functions.revoke(provider.address, scope))
        _fact("gas used", f"{receipt['gasUsed']:,}")
        has = chain.ledger.functions.hasAccess(patient.address, provider.address, scope).call()
        _fact("hasAccess", has)
        try:
            chain.ledger.functions.logCareEvent(
                patient.address, 5, keccak(report), provider.address, scope
            ).call({"from": provider.address})
            refused = "NOT refused (this is a bug)"
        except ContractCustomError as exc:
            refused = "refused: " + chain.decode_revert(str(exc.data))
        except ContractLogicError as exc:
            refused = f"refused: {exc}"
        _fact("provider logs again", refused)

        _step("The on-chain log (what an auditor reads; no health data in it)")
        for line in chain.event_log():
            click.echo("    " + line)
        if rpc_url is None:
            _step("Stopping the local node")
    click.echo("\nDone. Next: `kizuna --help`.")


def _sign_grant(
    chain: _Chain,
    patient: LocalAccount,
    provider: str,
    scope: bytes,
    expires_at: int,
    deadline: int,
) -> bytes:
    """The patient's EIP-712 ``Grant`` signature over the patient's current nonce."""
    message = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Grant": [
                {"name": "patient", "type": "address"},
                {"name": "provider", "type": "address"},
                {"name": "scopeId", "type": "bytes32"},
                {"name": "expiresAt", "type": "uint64"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Grant",
        "domain": {
            "name": "Kizuna ConsentLedger",
            "version": "1",
            "chainId": chain.w3.eth.chain_id,
            "verifyingContract": chain.ledger.address,
        },
        "message": {
            "patient": patient.address,
            "provider": provider,
            "scopeId": scope,
            "expiresAt": expires_at,
            "nonce": chain.ledger.functions.nonces(patient.address).call(),
            "deadline": deadline,
        },
    }
    return bytes(Account.sign_typed_data(patient.key, full_message=message).signature)


def _umbral_public_key() -> bytes:
    """A real Umbral public key (33 bytes, compressed) for the demo provider."""
    import umbral_pre

    return bytes(umbral_pre.SecretKey.random().public_key().to_compressed_bytes())


__all__ = ["blind_scope", "demo"]
