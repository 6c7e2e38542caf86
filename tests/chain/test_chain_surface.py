"""The public surface of ``kizuna.chain``: pinned, importable, and light to import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import kizuna.chain

PINNED = [
    "AccessDecision",
    "AccessLogAgent",
    "AccessRequest",
    "BlockRef",
    "CareEvent",
    "CareEventKind",
    "Chain",
    "ConsentLedgerAgent",
    "ContractCall",
    "Deployment",
    "Eip712Domain",
    "EmergencyAccess",
    "EmergencyPolicy",
    "EventIndex",
    "ExternalWalletSigner",
    "FreshIndex",
    "Grant",
    "Guardian",
    "IndexSource",
    "KeystoreCorrupted",
    "KeystoreNotFound",
    "KeystoreSigner",
    "LocalKeySigner",
    "LogEntry",
    "NonceTooHigh",
    "Provider",
    "ProviderRegistryAgent",
    "ReceiptBatch",
    "Record",
    "RecordStatus",
    "RelayRefused",
    "Relayer",
    "RevertDecoder",
    "SignedAction",
    "Signer",
    "StaleRead",
    "TransactionReverted",
    "TransactionSender",
    "TxPolicy",
    "TxReceipt",
    "TypedData",
    "WrongPassphrase",
    "connect",
    "create_keystore",
    "grant_batch_typed_data",
    "grant_typed_data",
    "import_key",
    "keystore_address",
    "ledger_domain",
    "load_deployment",
    "load_deployment_file",
    "recover_typed_data_signer",
    "register_record_typed_data",
    "revoke_typed_data",
    "unlock",
    "web3_for",
]


def test_the_public_surface_is_pinned_and_sorted() -> None:
    assert kizuna.chain.__all__ == PINNED
    assert len(set(PINNED)) == len(PINNED)


def test_every_public_name_is_the_object_of_its_module() -> None:
    for name in PINNED:
        value = getattr(kizuna.chain, name)
        module = importlib.import_module(kizuna.chain._EXPORTS[name])
        assert value is getattr(module, name), name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        kizuna.chain.Nope  # noqa: B018


def test_light_modules_do_not_pull_in_web3() -> None:
    code = ("import sys, kizuna.chain.localnode, kizuna.chain.artifacts; "
            "print('web3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
