"""A participant's keys on their own machine: derived from their wallet, never sent anywhere.

:func:`participant_keys` asks the participant's signer to sign the fixed key-derivation message
(``kizuna.crypto.wallet_keys``) and derives the Umbral keys and the scope-blinding key from that
signature — the same keys the web page derives with MetaMask. Scope labels become scope ids with
:meth:`ParticipantKeys.scope_id` (blinded: the service and the chain never see a label), and
each scope has its own delegating key pair (docs/service.md "Keys") that records of that scope
are encrypted to and that key fragments for a grant of that scope are made from.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from kizuna.chain.eip712 import TypedData
from kizuna.chain.signers import Signer
from kizuna.crypto import pre
from kizuna.crypto.scopes import (
    CATEGORY_PATTERN,
    MAX_CATEGORY_LENGTH,
    RESOURCE_TYPES,
    blind_scope,
    scope_label,
)
from kizuna.crypto.wallet_keys import (
    INFO_SCOPE_DELEGATION,
    KeyDerivationDomain,
    WalletKeys,
    derive_wallet_keys,
    key_derivation_typed_data,
)
from kizuna.types import Address, ScopeId, ScopeLabel

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.rpc import ChainReader


SCOPE_DELEGATION_INFO = INFO_SCOPE_DELEGATION


def scope_delegating_key(wallet: WalletKeys, scope_id: ScopeId,
                         epoch: int = 0) -> pre.UmbralSecretKey:
    """The Umbral secret key of one scope in one epoch (docs/keys.md "Epochs")::

        scope_secret = scalar(HKDF-SHA256(ikm = decrypting key, salt = "kizuna/wallet-keys/v1",
                                          info = "kizuna/scope-delegation/v1" || scope_id
                                                 [|| epoch as uint64, from epoch 1 on], 48))

    with ``scalar`` the same reduction into [1, n-1] as the wallet keys (FIPS 186-4 B.4.1);
    written once, in :func:`kizuna.crypto.wallet_keys.derive_scope_delegating_key`.
    Deterministic: the patient re-derives every scope key from their wallet, nothing stored.
    """
    return wallet.scope_delegating_key(scope_id, epoch)


class ParticipantKeys:
    """A participant's wallet-derived keys plus the per-scope keys computed from them.

    Holds secrets: never printed, pickled or sent (``WalletKeys`` refuses all three).
    """

    __slots__ = ("_labels", "wallet")

    def __init__(self, wallet: WalletKeys) -> None:
        self.wallet = wallet
        self._labels: dict[ScopeId, ScopeLabel] = {}

    @property
    def account(self) -> Address:
        return self.wallet.account

    @property
    def public_key(self) -> pre.UmbralPublicKey:
        """What messages to this participant are encrypted to (a provider's registry key)."""
        return self.wallet.public_key

    @property
    def verifying_key(self) -> pre.UmbralPublicKey:
        return self.wallet.verifying_key

    def scope_id(self, label: str) -> ScopeId:
        """The blinded on-chain id of a scope label (remembered, to map ids back to labels)."""
        valid = scope_label(label)
        sid = blind_scope(self.wallet.scope_key, valid)
        self._labels[sid] = valid
        return sid

    def learn_labels(self, labels: Iterable[str]) -> None:
        """Blind ``labels`` so that :meth:`label_of` can name their scope ids (a fresh client
        knows no labels; ``learn_labels(vocabulary())`` covers every imported record)."""
        for label in labels:
            self._labels[blind_scope(self.wallet.scope_key, label)] = ScopeLabel(label)

    def label_of(self, scope_id: ScopeId) -> ScopeLabel | None:
        """The label behind a scope id this participant blinded before (``None`` if unknown)."""
        return self._labels.get(ScopeId(bytes(scope_id)))

    def scope_secret(self, scope_id: ScopeId, epoch: int = 0) -> pre.UmbralSecretKey:
        """The delegating secret key of one scope in one epoch: records of the scope written
        in that epoch are opened with it."""
        return scope_delegating_key(self.wallet, scope_id, epoch)

    def scope_public(self, scope_id: ScopeId, epoch: int = 0) -> pre.UmbralPublicKey:
        """The delegating public key of one scope in one epoch: records of the scope written
        in that epoch are encrypted to it."""
        return self.scope_secret(scope_id, epoch).public_key

    def kfrags_for(self, scope_id: ScopeId, receiving_key: pre.UmbralPublicKey, *,
                   epoch: int = 0, threshold: int = 1,
                   shares: int = 1) -> tuple[pre.VerifiedKeyFrag, ...]:
        """Key fragments letting ``receiving_key`` open this scope's records of ``epoch`` via
        the proxy."""
        return pre.generate_kfrags(self.scope_secret(scope_id, epoch), receiving_key,
                                   self.wallet.signer(), threshold=threshold, shares=shares)

    def __repr__(self) -> str:
        return f"ParticipantKeys({self.account})"


def vocabulary() -> tuple[ScopeLabel, ...]:
    """Every label Kizuna's FHIR importer can give a record: each resource type, and each
    ``Type:category`` of the closed category vocabulary (``kizuna.storage.fhir.scopes``)."""
    # The FHIR model index (fhir.resources) is loaded here, not by every client's start.
    from kizuna.storage.fhir.scopes import CATEGORY_SYSTEMS

    labels = set(RESOURCE_TYPES)
    for resource_type, vocabulary in CATEGORY_SYSTEMS.items():
        for codes in vocabulary.systems.values():
            labels.update(f"{resource_type}:{code}" for code in codes)
    return tuple(ScopeLabel(label) for label in sorted(labels))


def vocabulary_document() -> dict[str, object]:
    """What the web page needs of the scope-label rules, generated from here (never typed a
    second time): the labels it blinds to name a patient's scope ids (:func:`vocabulary`) and
    the rule :func:`~kizuna.crypto.scopes.parse_scope_label` checks a label with.
    ``python -m kizuna.client.keys web/src/patient/vocabulary.json`` writes it."""
    return {
        "generated_by": "python -m kizuna.client.keys web/src/patient/vocabulary.json",
        "resource_types": sorted(RESOURCE_TYPES),
        "category_pattern": CATEGORY_PATTERN.pattern,
        "max_category_length": MAX_CATEGORY_LENGTH,
        "vocabulary": list(vocabulary()),
    }


def vocabulary_json() -> str:
    """:func:`vocabulary_document` as the committed file's text."""
    return json.dumps(vocabulary_document(), indent=1) + "\n"


def derivation_domain(chain: Chain | ChainReader) -> KeyDerivationDomain:
    """The key-derivation domain of a deployment: its chain id and ConsentLedger."""
    return KeyDerivationDomain(chain_id=chain.chain_id,
                               verifying_contract=chain.deployment.consent_ledger)


def participant_keys(signer: Signer, domain: KeyDerivationDomain) -> ParticipantKeys:
    """Sign the key-derivation message with ``signer`` and derive the participant's keys."""
    document = key_derivation_typed_data(account=signer.address, domain=domain)
    typed = TypedData.from_json(document)
    signature = signer.sign_typed_data(typed)
    return ParticipantKeys(derive_wallet_keys(signature=signature, account=signer.address,
                                              domain=domain))


__all__ = [
    "SCOPE_DELEGATION_INFO",
    "ParticipantKeys",
    "derivation_domain",
    "participant_keys",
    "scope_delegating_key",
    "vocabulary",
    "vocabulary_document",
    "vocabulary_json",
]


if __name__ == "__main__":
    # Regenerate the web page's copy: python -m kizuna.client.keys web/src/patient/vocabulary.json
    Path(sys.argv[1]).write_text(vocabulary_json(), encoding="utf-8")
