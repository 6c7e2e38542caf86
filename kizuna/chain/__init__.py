"""Everything that talks to Ethereum: artifacts, deployments, agents, signers, event index.

The public surface is one sorted ``__all__`` (pinned by a test). Names are imported on first
use (PEP 562 module ``__getattr__`` over the explicit table below), so that importing a light
module such as ``kizuna.chain.localnode`` or ``kizuna.chain.artifacts`` does not pull in web3;
``from kizuna.chain import connect`` works as usual. (``deploy`` is not re-exported: the name
is its module's, ``kizuna.chain.deploy``.) See docs/chain.md for the layers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kizuna.chain.agents import AccessLogAgent, ConsentLedgerAgent, ProviderRegistryAgent
    from kizuna.chain.connection import Chain, connect, load_deployment_file, web3_for
    from kizuna.chain.deploy import Deployment, load_deployment
    from kizuna.chain.eip712 import (
        Eip712Domain,
        SignedAction,
        TypedData,
        grant_batch_typed_data,
        grant_typed_data,
        ledger_domain,
        register_record_typed_data,
        revoke_typed_data,
    )
    from kizuna.chain.index import AccessDecision, EventIndex, FreshIndex, IndexSource, StaleRead
    from kizuna.chain.keystore import (
        KeystoreCorrupted,
        KeystoreNotFound,
        WrongPassphrase,
        create_keystore,
        import_key,
        keystore_address,
        unlock,
    )
    from kizuna.chain.models import (
        AccessRequest,
        BlockRef,
        CareEvent,
        CareEventKind,
        ContractCall,
        EmergencyAccess,
        EmergencyPolicy,
        Grant,
        Guardian,
        LogEntry,
        Provider,
        ReceiptBatch,
        Record,
        RecordStatus,
        TxReceipt,
    )
    from kizuna.chain.relayer import Relayer, RelayRefused
    from kizuna.chain.reverts import RevertDecoder
    from kizuna.chain.signers import (
        ExternalWalletSigner,
        KeystoreSigner,
        LocalKeySigner,
        Signer,
        recover_typed_data_signer,
    )
    from kizuna.chain.transactions import (
        NonceTooHigh,
        TransactionReverted,
        TransactionSender,
        TxPolicy,
    )

_EXPORTS: dict[str, str] = {
    "AccessDecision": "kizuna.chain.index",
    "AccessLogAgent": "kizuna.chain.agents",
    "AccessRequest": "kizuna.chain.models",
    "BlockRef": "kizuna.chain.models",
    "CareEvent": "kizuna.chain.models",
    "CareEventKind": "kizuna.chain.models",
    "Chain": "kizuna.chain.connection",
    "ConsentLedgerAgent": "kizuna.chain.agents",
    "ContractCall": "kizuna.chain.models",
    "Deployment": "kizuna.chain.deploy",
    "Eip712Domain": "kizuna.chain.eip712",
    "EmergencyAccess": "kizuna.chain.models",
    "EmergencyPolicy": "kizuna.chain.models",
    "EventIndex": "kizuna.chain.index",
    "ExternalWalletSigner": "kizuna.chain.signers",
    "FreshIndex": "kizuna.chain.index",
    "Grant": "kizuna.chain.models",
    "Guardian": "kizuna.chain.models",
    "IndexSource": "kizuna.chain.index",
    "KeystoreCorrupted": "kizuna.chain.keystore",
    "KeystoreNotFound": "kizuna.chain.keystore",
    "KeystoreSigner": "kizuna.chain.signers",
    "LocalKeySigner": "kizuna.chain.signers",
    "LogEntry": "kizuna.chain.models",
    "NonceTooHigh": "kizuna.chain.transactions",
    "Provider": "kizuna.chain.models",
    "ProviderRegistryAgent": "kizuna.chain.agents",
    "ReceiptBatch": "kizuna.chain.models",
    "Record": "kizuna.chain.models",
    "RecordStatus": "kizuna.chain.models",
    "RelayRefused": "kizuna.chain.relayer",
    "Relayer": "kizuna.chain.relayer",
    "RevertDecoder": "kizuna.chain.reverts",
    "SignedAction": "kizuna.chain.eip712",
    "Signer": "kizuna.chain.signers",
    "StaleRead": "kizuna.chain.index",
    "TransactionReverted": "kizuna.chain.transactions",
    "TransactionSender": "kizuna.chain.transactions",
    "TxPolicy": "kizuna.chain.transactions",
    "TxReceipt": "kizuna.chain.models",
    "TypedData": "kizuna.chain.eip712",
    "WrongPassphrase": "kizuna.chain.keystore",
    "connect": "kizuna.chain.connection",
    "create_keystore": "kizuna.chain.keystore",
    "grant_batch_typed_data": "kizuna.chain.eip712",
    "grant_typed_data": "kizuna.chain.eip712",
    "import_key": "kizuna.chain.keystore",
    "keystore_address": "kizuna.chain.keystore",
    "ledger_domain": "kizuna.chain.eip712",
    "load_deployment": "kizuna.chain.deploy",
    "load_deployment_file": "kizuna.chain.connection",
    "recover_typed_data_signer": "kizuna.chain.signers",
    "register_record_typed_data": "kizuna.chain.eip712",
    "revoke_typed_data": "kizuna.chain.eip712",
    "unlock": "kizuna.chain.keystore",
    "web3_for": "kizuna.chain.connection",
}
"""Public name → the module that defines it."""

__all__ = [
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
