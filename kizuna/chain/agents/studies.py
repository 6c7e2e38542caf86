"""The study registry agent: typed views, transactions and events of ``StudyRegistry``
(research studies of verified researchers and the patients' research consents;
docs/research.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.types import BlockIdentifier

from kizuna.chain.agents.base import Agent, as_bytes32
from kizuna.chain.eip712 import (
    Eip712Domain,
    SignedAction,
    TypedData,
    studies_domain,
    study_consent_typed_data,
    study_withdrawal_typed_data,
)
from kizuna.chain.index.events import DecodedEvent
from kizuna.chain.models import ContractCall, TxReceipt
from kizuna.chain.signers import Signer
from kizuna.errors import ContractReverted, InputError
from kizuna.types import Address, ScopeId

RESEARCH_PURPOSE = "research"
"""The purpose a study consent is recorded with (docs/research.md)."""


@dataclass(frozen=True, slots=True)
class Study:
    """A registered study, from its ``StudyRegistered`` event and ``studyOf``."""

    study_id: bytes
    researcher: Address
    purpose: str
    scopes: tuple[str, ...]
    registered_at: int
    ends_at: int
    block_number: int


@dataclass(frozen=True, slots=True)
class StudyConsent:
    """A patient's consent to a study, as the registry holds it now."""

    study_id: bytes
    patient: Address
    scope_id: ScopeId
    consented: bool


class StudyRegistryAgent(Agent):
    """``StudyRegistry``: studies and research consents."""

    contract_name = "StudyRegistry"

    # -- calls -------------------------------------------------------------------------------

    def study_id(self, researcher: Address, salt: bytes) -> bytes:
        """``keccak256(abi.encode(researcher, salt))``: the id ``registerStudy`` gives."""
        return bytes(keccak(encode(["address", "bytes32"],
                                   [to_checksum_address(researcher),
                                    as_bytes32("salt", salt)])))

    def study(self, study_id: bytes, *, block: BlockIdentifier = "latest") -> Study | None:
        """The study, or ``None`` when no study has this id."""
        sid = as_bytes32("study_id", study_id)
        try:
            self._view("studyOf", sid, block=block)
        except ContractReverted as reverted:
            if reverted.name == "StudyRegistryUnknownStudy":
                return None
            raise
        for found in self.studies(study_id=sid):
            return found
        raise InputError("study_id", "registered but its StudyRegistered event is not on the "
                                     "node (a pruned node?)")  # pragma: no cover - not anvil

    def studies(self, *, study_id: bytes | None = None) -> list[Study]:
        """Every study registered (from the deployment block on), oldest first."""
        topics: list[bytes | None] | None = None
        if study_id is not None:
            topics = [None, as_bytes32("study_id", study_id)]
        found = []
        for event in self._logs("StudyRegistered", topics):
            args = event.args
            _researcher, registered_at, ends_at, _terms = self._view(
                "studyOf", bytes(args["studyId"]))
            found.append(Study(study_id=bytes(args["studyId"]),
                               researcher=to_checksum_address(args["researcher"]),
                               purpose=str(args["purpose"]),
                               scopes=tuple(str(s) for s in args["scopes"]),
                               registered_at=int(registered_at), ends_at=int(ends_at),
                               block_number=event.block_number))
        return found

    def consent_of(self, study_id: bytes, patient: Address, *,
                   block: BlockIdentifier = "latest") -> StudyConsent:
        scope_id, consented = self._view("consentOf", as_bytes32("study_id", study_id),
                                         to_checksum_address(patient), block=block)
        return StudyConsent(study_id=bytes(study_id), patient=to_checksum_address(patient),
                            scope_id=ScopeId(bytes(scope_id)), consented=bool(consented))

    def consenting_patients(self, study_id: bytes) -> list[StudyConsent]:
        """The patients whose consent to the study is current (given and not withdrawn),
        in the order they first consented."""
        sid = as_bytes32("study_id", study_id)
        seen: dict[Address, None] = {}
        for event in self._logs("StudyConsented", [None, sid]):
            seen.setdefault(to_checksum_address(event.args["patient"]), None)
        current = (self.consent_of(sid, p) for p in seen)
        return [c for c in current if c.consented]

    def _logs(self, event: str, topics: Sequence[bytes | None] | None) -> list[DecodedEvent]:
        topic0 = self.contract.events[event]().topic
        hexed: list[str | None] = [topic0]
        for topic in topics[1:] if topics else ():
            hexed.append(None if topic is None else "0x" + topic.hex())
        logs = self.chain.w3.eth.get_logs({
            "address": self.address, "fromBlock": self.chain.deployment.deploy_block,
            "toBlock": "latest", "topics": hexed,
        })
        decoded = (self._events.decode_raw(dict(log)) for log in logs)
        return [d for d in decoded if d is not None and d.name == event]

    # -- transactions ------------------------------------------------------------------------

    def register_study_call(self, salt: bytes, purpose: str, scopes: Sequence[str],
                            ends_at: int) -> ContractCall:
        return self._call("registerStudy", as_bytes32("salt", salt), purpose, list(scopes),
                          int(ends_at))

    def register_study(self, salt: bytes, purpose: str, scopes: Sequence[str], ends_at: int, *,
                       signer: Signer) -> TxReceipt:
        """The researcher (the signer, verified in the provider registry) registers a study."""
        return self._send(self.register_study_call(salt, purpose, scopes, ends_at), signer)

    def consent_call(self, study_id: bytes, scope_id: ScopeId) -> ContractCall:
        return self._call("consent", as_bytes32("study_id", study_id),
                          as_bytes32("scope_id", scope_id))

    def consent(self, study_id: bytes, scope_id: ScopeId, *, signer: Signer) -> TxReceipt:
        """The patient (the signer) records the research consent of its live ledger grant."""
        return self._send(self.consent_call(study_id, scope_id), signer)

    # -- signed (gasless) consent and withdrawal ---------------------------------------------

    @property
    def domain(self) -> Eip712Domain:
        """The registry's EIP-712 domain ("Kizuna StudyRegistry", "1", this chain, this address)."""
        return studies_domain(chain_id=self.chain.chain_id, studies=self.address)

    def nonce(self, patient: Address, *, block: BlockIdentifier = "latest") -> int:
        """The patient's next signature nonce of the registry (its own, not the ledger's)."""
        return int(self._view("nonces", to_checksum_address(patient), block=block))

    def consent_typed_data(self, *, patient: Address, study_id: bytes, scope_id: ScopeId,
                           deadline: int, nonce: int | None = None) -> TypedData:
        """EIP-712 ``StudyConsent`` for the patient to sign (nonce read from the chain if not
        given); anyone may then relay it (:meth:`by_sig_call`)."""
        return study_consent_typed_data(
            self.domain, patient=patient, study_id=study_id, scope_id=scope_id,
            nonce=self.nonce(patient) if nonce is None else nonce, deadline=deadline)

    def withdrawal_typed_data(self, *, patient: Address, study_id: bytes, deadline: int,
                              nonce: int | None = None) -> TypedData:
        """EIP-712 ``StudyWithdrawal`` for the patient to sign (the same nonce sequence as a
        consent's, read from the chain if not given); anyone may then relay it."""
        return study_withdrawal_typed_data(
            self.domain, patient=patient, study_id=study_id,
            nonce=self.nonce(patient) if nonce is None else nonce, deadline=deadline)

    def by_sig_call(self, action: SignedAction) -> ContractCall:
        """The ``consentBySig`` or ``withdrawBySig`` call that submits a patient's signed
        ``StudyConsent`` or ``StudyWithdrawal``."""
        if action.kind not in ("StudyConsent", "StudyWithdrawal"):
            raise InputError("typed_data.primaryType", f"{action.kind} is no study registry "
                                                       "action")
        if action.typed.domain != self.domain:
            raise InputError("domain", "the action was signed for another chain or contract")
        m = action.typed.message
        patient = to_checksum_address(m["patient"])
        study_id = bytes.fromhex(str(m["studyId"])[2:])
        if action.kind == "StudyWithdrawal":
            return self._call("withdrawBySig", patient, study_id, int(m["deadline"]),
                              action.signature)
        return self._call("consentBySig", patient, study_id,
                          bytes.fromhex(str(m["scopeId"])[2:]), int(m["deadline"]),
                          action.signature)

    def withdraw_call(self, study_id: bytes) -> ContractCall:
        return self._call("withdraw", as_bytes32("study_id", study_id))

    def withdraw(self, study_id: bytes, *, signer: Signer) -> TxReceipt:
        """The patient (the signer) withdraws with its own transaction (it pays the gas)."""
        return self._send(self.withdraw_call(study_id), signer)


__all__ = ["RESEARCH_PURPOSE", "Study", "StudyConsent", "StudyRegistryAgent"]
