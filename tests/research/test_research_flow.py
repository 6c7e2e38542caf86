"""Research sharing with consent, end to end on a real anvil and the real API: a verified
researcher registers a study (an unverified one cannot); three Synthea patients consent with
chosen scopes (a de-identified copy registered as one batch, a grant, a consent event); the
researcher exports the cohort as FHIR Bulk NDJSON through the provider read path (a receipt per
read), where a scanner finds no direct identifier of the input; a withdrawal stops further
reads while the reads before it stay on record."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from apienv import ApiServer, ChainEnv
from eth_utils.crypto import keccak
from synthea_data import small_bundle
from test_research_deidentify import LIVES, direct_identifiers, scan

from kizuna.chain.eip712 import SignedAction
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.importer import Importer, bundle_source
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.errors import AccessDenied, ContractReverted, InputError, KizunaError
from kizuna.research.studies import (
    consent_to_study,
    export_study,
    read_study,
    relay_consent,
    study_label,
    withdraw_from_study,
)

ASKED = ["Patient", "Condition", "Observation:vital-signs", "Observation:laboratory",
         "Encounter"]


@contextmanager
def _client(server: ApiServer, env: ChainEnv, signer: LocalKeySigner,
            provider: bool = False) -> Iterator[Any]:
    api = ApiClient(server.url, timeout=120)
    if provider:
        env.add_provider(signer, ProviderClient(
            signer=signer, service=ApiService(api, env.chain), chain=env.chain
        ).public_key.to_bytes())
    api.login(signer)
    service = ApiService(api, env.chain)
    try:
        cls = ProviderClient if provider else PatientClient
        yield cls(signer=signer, service=service, chain=env.chain)
    finally:
        service.close()


@pytest.fixture(scope="module")
def bundles(synthea_patients: Callable[..., Path]) -> list[dict[str, Any]]:
    """Three Synthea patients (the run's shared lives of test_research_deidentify.py), each as
    a small closed Bundle without its ExplanationOfBenefits (the Synthea port names the Patient
    as an EOB's insurer, which Kizuna's importer rightly refuses; nothing refers to an EOB)."""
    out = []
    for seed, ages in LIVES:
        life = json.loads(synthea_patients(ages, seed=seed).read_text("utf-8"))
        bundle = small_bundle(life, size=20, per_type=3)
        bundle["entry"] = [e for e in bundle["entry"]
                           if e["resource"]["resourceType"] != "ExplanationOfBenefit"]
        out.append(bundle)
    return out


def test_a_cohort_shares_deidentified_copies_and_a_withdrawal_stops_reads(
        api_server: ApiServer, chain_env: ChainEnv, bundles: list[dict[str, Any]],
        tmp_path: Path) -> None:
    chain = chain_env.chain
    ends_at = chain.head().timestamp + 30 * 86_400

    # An unverified researcher cannot register a study.
    stranger = chain_env.new_signer()
    with pytest.raises(ContractReverted) as refused:
        chain.studies.register_study(b"\x01" * 32, "Blood pressure", ASKED, ends_at,
                                     signer=stranger)
    assert refused.value.name == "StudyRegistryUnverifiedResearcher"

    with ExitStack() as stack:
        researcher = stack.enter_context(
            _client(api_server, chain_env, chain_env.new_signer(), provider=True))
        chain.studies.register_study(b"\x01" * 32, "Blood pressure and diabetes in adults",
                                     ASKED, ends_at, signer=researcher.signer)
        study_id = chain.studies.study_id(researcher.address, b"\x01" * 32)
        study = chain.studies.study(study_id)
        assert study is not None and study.scopes == tuple(ASKED)
        assert study.researcher == researcher.address and study.ends_at == ends_at

        patients = [stack.enter_context(_client(api_server, chain_env,
                                                LocalKeySigner("0x" + os.urandom(32).hex())))
                    for _ in bundles]
        for patient in patients:
            chain_env.fund(patient.address)
        for i, (patient, bundle) in enumerate(zip(patients, bundles, strict=True)):
            raw = json.dumps(bundle).encode()
            Importer(patient, journal_root=tmp_path / f"imports{i}").run(
                [bundle_source(bundle, raw, name="bundle.json")])

        # A scope the study did not ask for is refused, naming it; nothing is shared.
        with pytest.raises(InputError, match="Procedure not asked for"):
            consent_to_study(patients[0], study_id, ["Procedure"],
                             journal_root=tmp_path / "j")
        assert patients[0].records(labels=[study_label(study_id)]) == []

        chosen = [ASKED, ["Patient", "Observation:vital-signs"], ASKED]
        # The first and third consent gaslessly (the default: a StudyConsent signature the
        # API relays); the second sends its own transaction.
        relayed = [True, False, True]
        shares = [consent_to_study(p, study_id, c, journal_root=tmp_path / f"study{i}",
                                   relayed=r)
                  for i, (p, c, r) in enumerate(zip(patients, chosen, relayed, strict=True))]
        for patient, share, by_relayer in zip(patients, shares, relayed, strict=True):
            sender = chain.w3.eth.get_transaction(share.consent_tx)["from"]
            assert (sender != patient.address) is by_relayer, (sender, by_relayer)
        assert [chain.studies.nonce(p.address) for p in patients] == [1, 0, 1]
        for patient, share in zip(patients, shares, strict=True):
            assert share.resources > 0 and share.imported.registered == share.resources
            assert len(share.imported.batches) == 1  # one batch: one signature
            consent = chain.studies.consent_of(study_id, patient.address)
            assert consent.consented and consent.scope_id == share.scope_id
            grant = chain.ledger.grant_of(patient.address, researcher.address, share.scope_id)
            assert grant is not None

        out = tmp_path / "export"
        counts = export_study(researcher, study_id, out)
        assert counts["Patient"] == 3
        assert sum(counts.values()) == sum(s.resources for s in shares)
        # the second patient shared vital signs and their Patient only
        lines = [json.loads(line) for p in out.glob("*.ndjson")
                 for line in p.read_text("utf-8").splitlines()]
        assert {r["resourceType"] for r in lines} <= {"Patient", "Condition", "Observation",
                                                       "Encounter"}
        # THE DE-ID CHECK: no direct identifier of the input survives in the export.
        identifiers = set().union(*(direct_identifiers(b) for b in bundles))
        assert scan(out, identifiers) == []
        originals = {e["resource"]["id"] for b in bundles for e in b["entry"]}
        text = "".join(p.read_text("utf-8") for p in out.glob("*.ndjson"))
        assert not [i for i in originals if i in text]

        # Each read went through the read path: one receipt per record, on the patient's log.
        reads_before = {p.address: [r for r in p.reads() if r.provider == researcher.address]
                        for p in patients}
        for patient, share in zip(patients, shares, strict=True):
            assert len(reads_before[patient.address]) == share.resources
            assert {bytes(r.scope_id) for r in reads_before[patient.address]} == {
                bytes(share.scope_id)}

        # Withdrawal: the third patient's copy can no longer be read.
        leaving = patients[2]
        withdraw_from_study(leaving, study_id)
        assert not chain.studies.consent_of(study_id, leaving.address).consented
        left = [r for r in researcher.records(patient=leaving.address)
                if bytes(r.scope_id) == bytes(shares[2].scope_id)]
        assert left == []  # nothing readable is listed any more
        copy = leaving.records(labels=[study_label(study_id)])
        assert len(copy) == shares[2].resources
        with pytest.raises((AccessDenied, KizunaError)):
            researcher.read(patient=leaving.address, record_id=bytes(copy[0].record_id))
        again = list(read_study(researcher, study_id))
        assert {p for p, _ in again} == {patients[0].address, patients[1].address}
        assert len(again) == shares[0].resources + shares[1].resources
        # what the study read before the withdrawal stays on the patient's record of reads
        after = [r for r in leaving.reads() if r.provider == researcher.address]
        assert len(after) == len(reads_before[leaving.address])
        with pytest.raises(InputError, match="no current consent"):
            withdraw_from_study(leaving, study_id)


def test_a_relayed_consent_is_refused_when_replayed_or_expired(
        api_server: ApiServer, chain_env: ChainEnv) -> None:
    """``POST /wallet/relay`` submits a patient's ``StudyConsent``; the same signature again
    (after a withdrawal it would consent anew) and a signature past its deadline are refused
    before any gas is spent, and change nothing."""
    chain = chain_env.chain
    ends_at = chain.head().timestamp + 30 * 86_400
    with ExitStack() as stack:
        researcher = stack.enter_context(
            _client(api_server, chain_env, chain_env.new_signer(), provider=True))
        chain.studies.register_study(b"\x02" * 32, "Sleep and heart rate", ASKED, ends_at,
                                     signer=researcher.signer)
        study_id = chain.studies.study_id(researcher.address, b"\x02" * 32)
        signer = chain_env.new_signer()
        patient = stack.enter_context(_client(api_server, chain_env, signer))
        scope_id = patient.keys.scope_id(study_label(study_id))
        chain.ledger.grant(researcher.address, scope_id, ends_at, signer=signer)
        api = patient.service.api

        def signed(deadline: int) -> SignedAction:
            typed = chain.studies.consent_typed_data(
                patient=patient.address, study_id=study_id, scope_id=scope_id,
                deadline=deadline)
            return SignedAction(typed, signer.sign_typed_data(typed))

        # Past its deadline: refused, nothing used.
        expired = signed(chain.head().timestamp - 1)
        with pytest.raises(InputError, match="StudyRegistrySignatureExpired"):
            api.relay(expired)
        assert chain.studies.nonce(patient.address) == 0
        assert not chain.studies.consent_of(study_id, patient.address).consented

        action = signed(chain.head().timestamp + 3_600)
        tx_hash, _ = api.relay(action)
        assert chain.w3.eth.get_transaction(tx_hash)["from"] != patient.address
        assert chain.studies.consent_of(study_id, patient.address).consented
        assert chain.studies.nonce(patient.address) == 1

        # Withdrawn, then the same signature relayed again: its nonce is used, refused.
        chain.studies.withdraw(study_id, signer=signer)
        with pytest.raises(InputError, match="StudyRegistryInvalidSigner"):
            api.relay(action)
        assert not chain.studies.consent_of(study_id, patient.address).consented
        # Another patient cannot have it relayed either (the route takes the signed-in
        # patient's actions only).
        other = stack.enter_context(_client(api_server, chain_env, chain_env.new_signer()))
        with pytest.raises(AccessDenied):
            other.service.api.relay(signed(chain.head().timestamp + 3_600))


def test_a_patient_without_ether_withdraws_relayed_and_each_signature_counts_once(
        api_server: ApiServer, chain_env: ChainEnv) -> None:
    """Withdrawing is as easy as consenting: a patient whose wallet holds no ether consents and
    withdraws (the ledger revoke and ``withdrawBySig``, both relayed); a ``StudyWithdrawal``
    from ``POST /wallet/prepare/study-withdrawal`` signed by someone else, relayed by another
    signed-in patient, or relayed a second time (after a new consent) is refused and changes
    nothing."""
    chain = chain_env.chain
    ends_at = chain.head().timestamp + 30 * 86_400
    with ExitStack() as stack:
        researcher = stack.enter_context(
            _client(api_server, chain_env, chain_env.new_signer(), provider=True))
        chain.studies.register_study(b"\x03" * 32, "Walking and sleep", ASKED, ends_at,
                                     signer=researcher.signer)
        study_id = chain.studies.study_id(researcher.address, b"\x03" * 32)
        signer = chain_env.new_signer(funded=False)
        patient = stack.enter_context(_client(api_server, chain_env, signer))
        label = study_label(study_id)
        scope_id = patient.keys.scope_id(label)
        api = patient.service.api

        def consent() -> None:  # the relayed grant and the relayed consent
            patient.grant(researcher.address, [label], expires_at=ends_at)
            relay_consent(patient, study_id, scope_id)
            assert chain.studies.consent_of(study_id, patient.address).consented

        def consented() -> bool:
            return chain.studies.consent_of(study_id, patient.address).consented

        consent()
        tx = withdraw_from_study(patient, study_id)  # what `kizuna patient withdraw` does
        sent = chain.w3.eth.get_transaction(tx)
        assert sent["from"] != patient.address
        assert bytes(sent["input"])[:4] == keccak(
            text="withdrawBySig(address,bytes32,uint256,bytes)")[:4]
        assert not consented()
        grant = chain.ledger.grant_of(patient.address, researcher.address, scope_id)
        assert grant is None or not grant.live  # the revoke went first, relayed too
        assert chain.studies.nonce(patient.address) == 2  # consent and withdrawal: one sequence

        consent()
        patient.revoke(researcher.address, label)
        typed = api.typed_data("study-withdrawal", study_id=study_id,
                               deadline=chain.head().timestamp + 3_600)
        assert typed.primary_type == "StudyWithdrawal"
        assert typed.domain == chain.studies.domain
        assert int(typed.message["nonce"]) == 3
        # Signed by someone else for this patient: refused before any gas is spent.
        forged = SignedAction(typed, LocalKeySigner.generate().sign_typed_data(typed))
        with pytest.raises(InputError, match="StudyRegistryInvalidSigner"):
            api.relay(forged)
        action = SignedAction(typed, signer.sign_typed_data(typed))
        other = stack.enter_context(_client(api_server, chain_env, chain_env.new_signer()))
        with pytest.raises(AccessDenied):
            other.service.api.relay(action)
        assert consented() and chain.studies.nonce(patient.address) == 3
        tx_hash, _ = api.relay(action)
        assert chain.w3.eth.get_transaction(tx_hash)["from"] != patient.address
        assert not consented()

        # A new consent; the used withdrawal signature cannot end it.
        consent()
        with pytest.raises(InputError, match="StudyRegistryInvalidSigner"):
            api.relay(action)
        assert consented()
        assert chain.w3.eth.get_balance(patient.address) == 0  # never paid anything
