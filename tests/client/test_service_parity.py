"""``LocalService`` and ``ApiService`` pinned to each other, operation by operation (issue 11:
while two implementations of :class:`~kizuna.client.service.KizunaService` stay, a test pins
their behaviour).

One real stack: the module's anvil and deployment (``chain_env``) and the real API in a
subprocess (``api_server``); the local side opens a ``ServiceContext`` on the API's OWN settings
(the same chain, SQLite database and embedded store directory), so both sides talk to one
service state. Two patients and two providers, one of each per side, play the same scenario
with the same client code (``PatientClient`` / ``ProviderClient``, ``Importer``); every call a
client makes of its service is recorded (the real call goes through, its answer or exception
kept), and each operation's outcomes are compared between the sides after normalisation.

Normalised, because it legitimately differs between two participants on one chain (nothing
else is): their addresses (-> ``<patient>``, ``<provider>``, ``<other patient>``, ...), their
blinded scope ids and random record ids (-> ``<scope Basic>``, ``<record Observation>``, ...),
and the fields named in ``VARIES``, compared by type only: transaction hashes, block numbers,
chain times and what is computed from them (expiries, deadlines), what random encryption and
each participant's own keys make (CIDs, commitments, batch roots and proofs, capsules,
fragments, public keys, signatures, request ids), and the service's receipt counter (both
sides read from one service). Everything else — nonces, epochs, sizes, counts, content types,
kinds, flags, list lengths and order, exception types — must be equal.

Failure paths compare the exception's type and, for an ``InputError``, the field it names.
Every operation of the Protocol needs a case in ``CASES``: a new one without fails
``test_every_operation_has_a_parity_case``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.importer import Importer, bundle_source
from kizuna.client.local import LocalService
from kizuna.client.patient import PatientClient
from kizuna.client.provider import ProviderClient
from kizuna.client.service import KizunaService
from kizuna.crypto import pre
from kizuna.errors import AccessDenied, InputError
from kizuna.services.context import close_context, open_context
from kizuna.storage.store import ContentStream
from kizuna.types import Address, Cid, RecordId

if TYPE_CHECKING:
    from apienv import ApiServer, ChainEnv

    from kizuna.services.context import ServiceContext

pytestmark = pytest.mark.anvil

OPERATIONS = sorted(name for name, _ in inspect.getmembers(KizunaService, inspect.isfunction)
                    if not name.startswith("_"))

FHIR = "application/fhir+json"
BASIC = b'{"resourceType":"Basic","id":"parity"}'
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                  "code": {"text": "Glucose"}, "effectiveDateTime": f"2024-05-0{i}",
                  "valueQuantity": {"value": 90 + i, "unit": "mg/dL"}}} for i in (1, 2)]}

VARIES = frozenset({
    # the chain's record of each side's own transactions: hashes, blocks, times, expiries
    "tx_hash", "block_number", "head_block", "granted_block", "registered_block", "served_at",
    "created_at", "registered_at", "expires_at", "expiresAt", "until", "deadline",
    # random encryption and keys: each participant's own keys, each envelope's own bytes
    "cid", "ref", "commitment", "root", "batch_root", "proof", "leaf", "capsule", "cfrags",
    "public_key", "publicKey", "delegating_key", "delegatingKey", "verifying_key",
    "verifyingKey", "signature", "request_id",
    "receipt_seq",  # the service's receipt counter: both sides' reads share one service
})
"""Fields whose values differ between two participants' identical actions (module docstring):
compared by type only."""


@dataclass
class Side:
    """One participant pair and its service, with every call its clients made of it."""

    name: str
    service: KizunaService
    patient: PatientClient
    provider: ProviderClient
    guardian: Address
    calls: dict[str, list[Any]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    record_id: RecordId | None = None
    batch_record: RecordId | None = None
    other_record: RecordId | None = None

    def outcome(self, op: str) -> list[Any]:
        return self.calls.get(op, [])

    def learn(self, value: object, placeholder: str) -> None:
        key = (value.hex() if isinstance(value, bytes | bytearray) else str(value)).lower()
        self.names.setdefault(key.removeprefix("0x"), placeholder)


def _failure(exc: BaseException) -> tuple[str, str | None]:
    """What a caller sees of a failure: its type and, for bad input, the field."""
    return (type(exc).__name__, exc.field if isinstance(exc, InputError) else None)


def _spy(side: Side, service: object) -> None:
    """Record each Protocol call on ``service`` (the real call goes through). Generators and
    streams are drained into the record and handed on as lists / fresh bytes."""
    for op in OPERATIONS:
        real = getattr(service, op)

        def spied(*args: Any, _real: Callable[..., Any] = real, _op: str = op,
                  **kwargs: Any) -> Any:
            try:
                answer = _real(*args, **kwargs)
                if isinstance(answer, ContentStream):
                    with answer:
                        body = answer.read()
                    side.calls.setdefault(_op, []).append(("stream", len(body)))
                    return ContentStream(iter([body]), cid=answer.cid)
                if inspect.isgenerator(answer) or isinstance(answer, Iterator):
                    answer = list(answer)
                    side.calls.setdefault(_op, []).append(answer)
                    return iter(answer)
            except Exception as exc:
                side.calls.setdefault(_op, []).append(_failure(exc))
                raise
            side.calls.setdefault(_op, []).append(answer)
            return answer

        setattr(service, op, spied)


def shape(value: Any, side: Side, key: str | None = None) -> Any:
    """``value`` as the caller sees it, with what legitimately differs normalised (module
    docstring): known participants and ids by placeholder, ``VARIES`` fields by type."""
    if key is not None and key in VARIES and value is not None:
        return f"<{type(value).__name__}>"
    if value is None or isinstance(value, bool | enum.Enum | float):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value).hex()
        return side.names.get(raw, f"bytes:{raw}" if len(value) <= 32 else f"<{len(value)}B>")
    if isinstance(value, str):
        return side.names.get(value.lower().removeprefix("0x"), value)
    if isinstance(value, pre.UmbralPublicKey):
        return side.names.get(value.to_bytes().hex(), "<umbral key>")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__} | {
            f.name: shape(getattr(value, f.name), side, f.name)
            for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(shape(k, side)): shape(v, side, str(k)) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((shape(v, side) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [shape(v, side, key) for v in value]
    return f"<{type(value).__name__}>"


# --- the stack: one chain, one API, one service state; a side per implementation -------------


@pytest.fixture(scope="module")
def api_server(chain_env: ChainEnv,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The module's API with a follow interval longer than the run: the API's index follower
    deletes a revoked grant's fragments on its own (tests/adversarial/
    test_fragments_follow_chain), and in this database, which both sides share, it could do so
    between a revocation's confirmation and the service's own deletion, so that whichever side
    it raced reported ``kfrags_deleted`` 0. What is compared here is the two implementations'
    answers, not the follower's timing."""
    from apienv import ApiServer, settings_for

    from kizuna.chain.localnode import free_port

    data = tmp_path_factory.mktemp("parity-api")
    settings = settings_for(chain_env, data, port=free_port(), follow_interval_s=3600.0)
    server = ApiServer(settings=settings, log_path=data / "api.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def local_ctx(api_server: ApiServer) -> Iterator[ServiceContext]:
    """A ServiceContext on the API server's own settings: the same database and store."""
    ctx = open_context(api_server.settings)
    yield ctx
    close_context(ctx)


def _side(name: str, service: KizunaService, chain_env: ChainEnv,
          login: Callable[[LocalKeySigner], KizunaService] | None) -> Side:
    patient_signer, provider_signer = chain_env.new_signer(), chain_env.new_signer()
    patient_service = login(patient_signer) if login else service
    provider_service = login(provider_signer) if login else service
    patient = PatientClient(signer=patient_signer, service=patient_service, chain=chain_env.chain)
    provider = ProviderClient(signer=provider_signer, service=provider_service,
                              chain=chain_env.chain)
    chain_env.add_provider(provider_signer, provider.public_key.to_bytes())
    side = Side(name=name, service=patient_service, patient=patient, provider=provider,
                guardian=LocalKeySigner.generate().address)
    for s in {id(patient_service): patient_service, id(provider_service): provider_service
              }.values():
        _spy(side, s)
    side.learn(patient.address, "<patient>")
    side.learn(provider.address, "<provider>")
    side.learn(provider.public_key.to_bytes(), "<provider's registry key>")
    side.learn(side.guardian, "<guardian>")
    return side


def _play(side: Side, tmp: Path) -> None:
    """The scenario, the same on both sides: every client path that calls the service."""
    p, v = side.patient, side.provider
    p.publish_inbox_key()
    record = p.add_record(BASIC, label="Basic", content_type=FHIR)
    side.record_id = record.record_id
    side.learn(record.record_id, "<record>")
    side.learn(record.scope_id, "<scope Basic>")
    p.grant(v.address, ["Basic"], expires_at=p.now() + 60 * 86_400)
    v.patients()
    v.records(patient=p.address)
    v.read(patient=p.address, record_id=record.record_id)
    p.records()
    p.read_own(record.record_id)
    dict(p.service.own_envelopes(patient=p.address, record_ids=[record.record_id]))
    result = Importer(p, journal_root=tmp / side.name, workers=1).run(
        [bundle_source(BUNDLE, json.dumps(BUNDLE).encode(), name="bundle.json")])
    for info, label in p.labelled_records():  # the batch's records: random ids, one name
        side.learn(info.record_id, f"<record {label}>")
        side.learn(info.scope_id, f"<scope {label}>")
    assert result.registered == 2
    side.batch_record = result.manifests[0].leaves[0].record_id  # leaf 0 on both sides
    p.reads()
    p.attempted_reads()
    asked = v.request_access(p.address, b"may I see your labs?")
    p.inbox()
    p.open_message(asked.ref)
    p.decline(v.address)
    v.inbox()
    p.set_emergency_policy(allowed=True, max_duration=3_600)
    p.leave_emergency_kit(["Basic"], providers=[v.address])
    v.break_glass(p.address, duration=600, reason_code=1)
    p.appoint_guardian(side.guardian, until=p.now() + 86_400)
    p.revoke(v.address, "Basic")  # the scope's epoch moves: a new grant reissues epoch 0
    p.grant(v.address, ["Basic"], expires_at=p.now() + 60 * 86_400)
    p.revoke_all(v.address)
    with pytest.raises(AccessDenied):  # recorded: compared by CASES["read"]
        v.read(patient=p.address, record_id=record.record_id)


@pytest.fixture(scope="module")
def sides(chain_env: ChainEnv, api_server: ApiServer, local_ctx: ServiceContext,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Side, Side]:
    relayer = Relayer(local_ctx.chain, chain_env.new_signer())  # a key of its own: no nonce race
    local = _side("local", LocalService(local_ctx, relayer=relayer), chain_env, None)

    def login(signer: LocalKeySigner) -> KizunaService:
        api = ApiClient(api_server.url)
        api.login(signer)
        return ApiService(api, chain_env.chain)

    remote = _side("api", login(chain_env.new_signer()), chain_env, login)
    tmp = tmp_path_factory.mktemp("parity")
    for side in (local, remote):
        _play(side, tmp)
    # Each side sees the other's participants (the providers' list): named alike on both.
    for me, other in ((local, remote), (remote, local)):
        me.learn(other.patient.address, "<other patient>")
        me.learn(other.provider.address, "<other provider>")
        me.other_record = other.record_id
        me.learn(_own(other), "<other record>")
        me.learn(other.patient.keys.scope_id("Basic"), "<other scope Basic>")
    for me, other in ((local, remote), (remote, local)):
        # A provider reads the other patient's record, granted nothing: the read's 3rd call.
        with pytest.raises(AccessDenied):  # recorded: compared by CASES["read"]
            me.provider.read(patient=other.patient.address, record_id=_own(other))
    return local, remote


# --- the cases: operation -> what the caller sees on one side, part by part ------------------

Part = Callable[[Side], Any]
Case = Callable[[Side], dict[str, Any]]


def _case(**parts: Part) -> Case:
    """An operation's case: named parts (a scenario's outcomes, a failure path, ...), each
    compared on its own, so a known difference in one part hides nothing in the others."""
    def case(side: Side) -> dict[str, Any]:
        return {name: part(side) for name, part in parts.items()}
    return case


def _recorded(op: str, key: str | None = None, *, unordered: bool = False) -> Part:
    """Every outcome of ``op`` in the scenario, in call order (``key``: the field name a bare
    answer is normalised as; ``unordered``: each answer a list whose order is not compared)."""
    def part(side: Side) -> Any:
        assert side.outcome(op), f"the scenario never called {op}"
        shaped = [shape(o, side, key) for o in side.outcome(op)]
        return [sorted(o, key=repr) for o in shaped] if unordered else shaped
    return part


def _at(op: str, index: int) -> Part:
    """The outcome of the scenario's ``index``-th call of ``op``."""
    def part(side: Side) -> Any:
        return shape(side.outcome(op)[index], side)
    return part


def _direct(call: Part) -> Part:
    """One direct call (answer or failure), for an operation or failure path the scenario
    does not reach."""
    def part(side: Side) -> Any:
        try:
            return shape(call(side), side)
        except Exception as exc:
            return _failure(exc)
    return part


def _sorted(call: Part) -> Part:
    """A direct call whose answer's order is not part of the contract (sorted once shaped)."""
    def part(side: Side) -> Any:
        try:
            return sorted(shape(call(side), side), key=repr)
        except Exception as exc:
            return _failure(exc)
    return part


def _own(side: Side) -> RecordId:
    assert side.record_id is not None
    return side.record_id


def _batched(side: Side) -> RecordId:
    assert side.batch_record is not None
    return side.batch_record


def _theirs(side: Side) -> RecordId:
    assert side.other_record is not None
    return side.other_record


_MISSING = RecordId(b"\x5a" * 32)
_STRANGER = cast("Address", "0x" + "5a" * 20)
_MALFORMED = cast("Address", "0x1234")

CASES: dict[str, Case] = {
    "key_domain": _case(answer=_direct(lambda s: s.service.key_domain())),
    "proxy_domain": _case(answer=_direct(lambda s: s.service.proxy_domain())),
    "chain_time": _case(answer=_direct(lambda s: type(s.service.chain_time()).__name__)),
    "provider_key": _case(
        scenario=_recorded("provider_key"),
        not_a_provider=_direct(lambda s: s.service.provider_key(_STRANGER))),
    "scope_epoch": _case(
        scenario=_recorded("scope_epoch"),
        malformed_patient=_direct(lambda s: s.service.scope_epoch(
            _MALFORMED, s.patient.keys.scope_id("Basic")))),
    "scope_keys_statement": _case(scenario=_recorded("scope_keys_statement")),
    "register_scope_keys": _case(scenario=_recorded("register_scope_keys")),
    "inbox_key_statement": _case(scenario=_recorded("inbox_key_statement")),
    "publish_inbox_key": _case(scenario=_recorded("publish_inbox_key")),
    "inbox_key_of": _case(
        own=_direct(lambda s: s.service.inbox_key_of(s.patient.address)),
        never_published=_direct(lambda s: s.service.inbox_key_of(_STRANGER)),
        malformed=_direct(lambda s: s.service.inbox_key_of(_MALFORMED))),
    "register_record_typed_data": _case(scenario=_recorded("register_record_typed_data")),
    "register_batch_typed_data": _case(scenario=_recorded("register_batch_typed_data")),
    "grant_typed_data": _case(scenario=_recorded("grant_typed_data")),
    "revoke_typed_data": _case(scenario=_recorded("revoke_typed_data")),
    "upload_record": _case(scenario=_recorded("upload_record")),
    "list_records": _case(
        # oldest first; a batch's records share their time and are ordered by their random
        # ids, so which comes first differs between the sides: compared as sets
        scenario=_recorded("list_records", unordered=True),
        all_now=_sorted(lambda s: s.service.list_records(patient=s.patient.address)),
        malformed_patient=_direct(lambda s: s.service.list_records(patient=_MALFORMED))),
    "get_record": _case(
        scenario=_recorded("get_record"),
        batch_record=_direct(lambda s: s.service.get_record(_batched(s),
                                                            patient=s.patient.address)),
        missing=_direct(lambda s: s.service.get_record(_MISSING, patient=s.patient.address)),
        other_patients=_direct(lambda s: s.service.get_record(_theirs(s),
                                                              patient=s.patient.address))),
    "open_own_record": _case(
        scenario=_recorded("open_own_record"),
        missing=_direct(lambda s: s.service.open_own_record(
            patient=s.patient.address, record_id=_MISSING).read()),
        other_patients=_direct(lambda s: s.service.open_own_record(
            patient=s.patient.address, record_id=_theirs(s)).read())),
    "own_envelopes": _case(scenario=_recorded("own_envelopes")),
    "stage_envelopes": _case(scenario=_recorded("stage_envelopes")),
    "staged_ids": _case(scenario=_recorded("staged_ids")),
    "register_batch": _case(scenario=_recorded("register_batch")),
    "reads_of": _case(scenario=_recorded("reads_of")),
    "attempted_reads_of": _case(scenario=_recorded("attempted_reads_of")),
    "grant_access": _case(scenario=_recorded("grant_access")),
    "revoke_access": _case(scenario=_recorded("revoke_access")),
    "revoke_all": _case(scenario=_recorded("revoke_all")),
    "reissue_kfrags": _case(scenario=_recorded("reissue_kfrags")),
    "grants_of": _case(
        scenario=_recorded("grants_of"),
        after_revoke_all=_direct(lambda s: s.service.grants_of(patient=s.patient.address))),
    "grants_to": _case(
        after_revoke_all=_direct(lambda s: s.service.grants_to(provider=s.provider.address))),
    "active_providers": _case(answer=_sorted(lambda s: s.service.active_providers())),
    "leave_kit": _case(scenario=_recorded("leave_kit")),
    "patients_of": _case(scenario=_recorded("patients_of")),
    "readable_records": _case(scenario=_recorded("readable_records")),
    "read": _case(served=_at("read", 0), after_revoke_all=_at("read", 1),
                  without_grant=_at("read", 2)),
    "fetch": _case(
        own_record=_direct(lambda s: len(s.service.fetch(
            s.service.get_record(_own(s), patient=s.patient.address).cid).read())),
        missing=_direct(lambda s: s.service.fetch(Cid(
            "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")).read())),
    "onchain_commitment": _case(
        scenario=_recorded("onchain_commitment", "commitment"),
        missing=_direct(lambda s: s.service.onchain_commitment(
            patient=s.patient.address, record_id=_MISSING))),
    "onchain_commitments": _case(answer=_sorted(
        lambda s: [(k, {"commitment": v}) for k, v in
                   s.service.onchain_commitments(patient=s.patient.address).items()])),
    "send_message": _case(scenario=_recorded("send_message")),
    "open_message": _case(
        scenario=_recorded("open_message"),
        unknown_ref=_direct(lambda s: s.service.open_message(
            reader=s.patient.address, ref=os.urandom(32)).read())),
    "patient_inbox": _case(scenario=_recorded("patient_inbox")),
    "provider_inbox": _case(scenario=_recorded("provider_inbox")),
    "answer_no": _case(scenario=_recorded("answer_no")),
    "confirm_appoint_guardian": _case(scenario=_recorded("confirm_appoint_guardian")),
    "confirm_emergency_policy": _case(scenario=_recorded("confirm_emergency_policy")),
    "confirm_break_glass": _case(scenario=_recorded("confirm_break_glass")),
}

XFAIL: dict[tuple[str, str], str] = {}
"""Parts where the two implementations differ today, each naming the difference. Strict: a
listed part that agrees fails the test, so the entry goes when the difference is fixed."""


def test_every_operation_has_a_parity_case() -> None:
    assert len(OPERATIONS) > 40, OPERATIONS  # found from the Protocol itself
    assert set(CASES) == set(OPERATIONS)
    assert {op for op, _ in XFAIL} <= set(OPERATIONS)


@pytest.mark.parametrize("op", OPERATIONS)
def test_local_and_api_agree(op: str, sides: tuple[Side, Side]) -> None:
    local, remote = sides
    seen_local, seen_api = CASES[op](local), CASES[op](remote)
    assert seen_local.keys() == seen_api.keys()
    known = {part: why for (o, part), why in XFAIL.items() if o == op}
    for part in seen_local:
        if part not in known:
            assert (part, seen_local[part]) == (part, seen_api[part])
    fixed = [part for part in known if seen_local[part] == seen_api[part]]
    assert not fixed, f"known differences gone (remove their XFAIL entries): {fixed}"
    if known:
        pytest.xfail("; ".join(f"{part}: {why}" for part, why in known.items()))
