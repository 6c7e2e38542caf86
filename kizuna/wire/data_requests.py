"""Data requests' rules and types, shared by the service (:mod:`kizuna.services.data_requests`)
and the participants' client (:mod:`kizuna.client.data_requests`): one home, so the fields a
patient's client checks and commits to on-chain are the ones the service checks and recomputes.

A request is structured (FHIR resource types, a period, a deadline in days); its on-chain ``ref``
is :func:`request_commitment`, an answer's is :func:`answer_commitment`. States: ``open`` →
``acknowledged`` → ``fulfilled-in-part`` (any number) → ``fulfilled`` / ``declined``
(:func:`check_answer`, :func:`can_become`). *Overdue* is not a stored state: a request not
fulfilled or declined is overdue once chain time passes ``asked_at + deadline_days`` days.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kizuna.chain.models import CareEventKind
from kizuna.errors import ConflictError, InputError
from kizuna.storage.fhir.dates import date_problem, to_timestamp
from kizuna.types import Address, Cid, Commitment, checked_address, checked_bytes32

DEFAULT_DEADLINE_DAYS = 30
"""The right of access's deadline: HIPAA §164.524(b)(2) and GDPR Art. 12(3) (one month)."""
MAX_DEADLINE_DAYS = 365
MAX_TYPES = 64
MAX_NOTE_BYTES = 64 << 10
MAX_REASON_CHARS = 2000
MAX_DELIVERY_BYTES = 256 << 20
MAX_DELIVERIES_PER_ANSWER = 1000
DAY = 86_400

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
FULFILLED_IN_PART = "fulfilled-in-part"
FULFILLED = "fulfilled"
DECLINED = "declined"
OVERDUE = "overdue"
ANSWER_STATES: dict[str, CareEventKind] = {
    ACKNOWLEDGED: CareEventKind.DATA_REQUEST_ACKNOWLEDGED,
    FULFILLED_IN_PART: CareEventKind.DATA_REQUEST_FULFILLED_IN_PART,
    FULFILLED: CareEventKind.DATA_REQUEST_FULFILLED,
    DECLINED: CareEventKind.DATA_REQUEST_DECLINED,
}
"""An answer's state (the API's vocabulary) → the ledger's care event kind."""
CLOSED = frozenset({FULFILLED, DECLINED})
_FROM: dict[str, frozenset[str]] = {
    ACKNOWLEDGED: frozenset({OPEN}),
    FULFILLED_IN_PART: frozenset({OPEN, ACKNOWLEDGED, FULFILLED_IN_PART}),
    FULFILLED: frozenset({OPEN, ACKNOWLEDGED, FULFILLED_IN_PART}),
    DECLINED: frozenset({OPEN, ACKNOWLEDGED, FULFILLED_IN_PART}),
}
"""Which states each answer may follow (``fulfilled`` and ``declined`` end a request)."""


def can_become(current: str, state: str) -> bool:
    """Whether a request in ``current`` may take the answer ``state`` (an answer state)."""
    return current in _FROM[state]


# --- the committed documents (one home: the service and the clients build them here) ---------


def _digest(document: dict[str, Any]) -> Commitment:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return Commitment(hashlib.sha256(text.encode()).digest())


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


@dataclass(frozen=True, slots=True)
class AskFields:
    """What a patient asks for, checked (:func:`checked_fields`)."""

    types: tuple[str, ...]
    since: str | None
    until: str | None
    deadline_days: int


def checked_fields(*, types: Sequence[str], since: str | None, until: str | None,
                   deadline_days: int | None) -> AskFields:
    """The request's structured fields, or ``InputError`` naming the field and why."""
    # Imported here: the FHIR models load at import (~0.2 s), which the CLI's provider and
    # patient commands that only list or answer requests do not need.
    from kizuna.storage.fhir.model_index import resource_class

    if isinstance(types, str) or not isinstance(types, Sequence):
        raise InputError("types", "must be a list of FHIR resource types")
    if not 1 <= len(types) <= MAX_TYPES:
        raise InputError("types", f"ask for 1 to {MAX_TYPES} resource types")
    for i, name in enumerate(types):
        if not isinstance(name, str) or len(name) > 64 or resource_class(name) is None:
            raise InputError(f"types[{i}]", f"{str(name)[:64]!r} is not a FHIR R4 resource type")
    for field, value in (("since", since), ("until", until)):
        if value is not None:
            problem = date_problem(value) if isinstance(value, str) else "must be a string"
            if problem is not None:
                raise InputError(field, problem)
    if since is not None and until is not None:
        start, end = to_timestamp(since), to_timestamp(until)
        if start is not None and end is not None and start > end:
            raise InputError("until", f"{until} is before since ({since})")
    days = DEFAULT_DEADLINE_DAYS if deadline_days is None else deadline_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DEADLINE_DAYS:
        raise InputError("deadline_days", f"must be a whole number of days from 1 to "
                                          f"{MAX_DEADLINE_DAYS}")
    return AskFields(types=tuple(sorted(set(types))), since=since, until=until,
                     deadline_days=days)


def request_commitment(*, patient: str, provider: str, fields: AskFields,
                       note_ref: bytes | None, nonce: bytes) -> Commitment:
    """The ``ref`` of a ``DataRequested`` event: SHA-256 over the canonical JSON of the request
    (sorted keys, no spaces). The nonce hides the low-entropy fields from guessing."""
    return _digest({"kizuna": "data-request/1",
                    "patient": checked_address("patient", patient),
                    "provider": checked_address("provider", provider),
                    "types": list(fields.types), "since": fields.since, "until": fields.until,
                    "deadlineDays": fields.deadline_days, "note": _hex(note_ref),
                    "nonce": _hex(checked_bytes32("nonce", nonce))})


def answer_commitment(*, request_id: bytes, state: str, reason: str | None,
                      deliveries: Sequence[bytes], nonce: bytes) -> Commitment:
    """The ``ref`` of an answer's care event (request, state, reason, delivered envelopes)."""
    return _digest({"kizuna": "data-request-answer/1",
                    "request": _hex(checked_bytes32("request", request_id)), "state": state,
                    "reason": reason, "deliveries": [_hex(d) for d in deliveries],
                    "nonce": _hex(checked_bytes32("nonce", nonce))})


# --- what the service answers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """A file sent in answer to a request: an envelope encrypted to the patient."""

    commitment: Commitment
    cid: Cid
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Answer:
    """One provider answer, with the on-chain event that proves when it was given."""

    ref: Commitment
    state: str
    reason: str | None
    nonce: bytes
    deliveries: tuple[Delivery, ...]
    tx_hash: bytes
    block_number: int
    answered_at: int


@dataclass(frozen=True, slots=True)
class DataRequest:
    """A request and everything answered so far; ``status`` is ``overdue`` when the deadline
    passed (chain time ``now``) before it was fulfilled or declined, else ``state``."""

    request_id: Commitment
    patient: Address
    provider: Address
    fields: AskFields
    nonce: bytes
    note_ref: Commitment | None
    tx_hash: bytes
    block_number: int
    asked_at: int
    answers: tuple[Answer, ...]
    now: int

    @property
    def deadline(self) -> int:
        return self.asked_at + self.fields.deadline_days * DAY

    @property
    def state(self) -> str:
        return self.answers[-1].state if self.answers else OPEN

    @property
    def overdue(self) -> bool:
        return self.state not in CLOSED and self.now > self.deadline

    @property
    def status(self) -> str:
        return OVERDUE if self.overdue else self.state

    @property
    def deliveries(self) -> tuple[Delivery, ...]:
        return tuple(d for a in self.answers for d in a.deliveries)


def check_answer(request: DataRequest, state: str, *, reason: str | None,
                 files: int) -> None:
    """Whether ``state`` (with ``reason`` and ``files`` files) may answer ``request`` now: the
    one rule, checked by the provider's client BEFORE it logs anything on-chain and again by
    the service. ``InputError`` / ``ConflictError`` saying why."""
    if state not in ANSWER_STATES:
        raise InputError("state", f"{str(state)[:40]!r} is not one of "
                                  f"{', '.join(ANSWER_STATES)}")
    if not can_become(request.state, state):
        raise ConflictError(f"the request is {request.state}: it cannot become {state}")
    if state == DECLINED:
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("reason", "a decline says why")
        if len(reason) > MAX_REASON_CHARS:
            raise InputError("reason", f"at most {MAX_REASON_CHARS} characters")
    elif reason is not None:
        raise InputError("reason", "only a decline carries a reason")
    if files > MAX_DELIVERIES_PER_ANSWER:
        raise InputError("deliveries", f"at most {MAX_DELIVERIES_PER_ANSWER} files an answer")
    if state in (ACKNOWLEDGED, DECLINED) and files:
        raise InputError("deliveries", f"an answer '{state}' sends no files")
    if state == FULFILLED_IN_PART and not files:
        raise InputError("deliveries", "a part sends at least one file")
    if state == FULFILLED and not files and not request.deliveries:
        raise InputError("deliveries", "nothing was sent yet: fulfil with the files")


# --- FHIR Task ---------------------------------------------------------------------------------

TASK_STATUS = {OPEN: "requested", ACKNOWLEDGED: "accepted", FULFILLED_IN_PART: "in-progress",
               FULFILLED: "completed", DECLINED: "rejected"}
"""A request's state → FHIR R4 ``Task.status`` (overdue keeps the status; ``businessStatus``
says overdue)."""


def iso_utc(seconds: int) -> str:
    """Chain time (Unix seconds) as a FHIR instant in UTC (``2026-01-02T03:04:05Z``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fhir_task(request: DataRequest) -> dict[str, Any]:
    """The request as a FHIR R4 ``Task``: who asked whom for what, its status, the deadline in
    ``restriction.period.end``, the chain's proof in ``identifier`` and ``relevantHistory``."""
    rid = "0x" + request.request_id.hex()
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": request.request_id.hex()[:64],
        "identifier": [{"system": "urn:kizuna:data-request", "value": rid}],
        "status": TASK_STATUS[request.state],
        "businessStatus": {"text": request.status},
        "intent": "order",
        "code": {"text": "Request for access to health records (HIPAA 164.524, GDPR Art. 15)"},
        "authoredOn": iso_utc(request.asked_at),
        "lastModified": iso_utc(request.answers[-1].answered_at if request.answers
                                else request.asked_at),
        "requester": {"identifier": {"system": "urn:ethereum:address",
                                     "value": request.patient}},
        "owner": {"identifier": {"system": "urn:ethereum:address", "value": request.provider}},
        "restriction": {"period": {"start": iso_utc(request.asked_at),
                                   "end": iso_utc(request.deadline)}},
        "input": [{"type": {"text": "resourceType"}, "valueCode": t}
                  for t in request.fields.types],
    }
    if request.fields.since is not None or request.fields.until is not None:
        period = {k: v for k, v in (("start", request.fields.since),
                                    ("end", request.fields.until)) if v is not None}
        task["input"].append({"type": {"text": "period"}, "valuePeriod": period})
    declined = [a for a in request.answers if a.state == DECLINED]
    if declined:
        task["statusReason"] = {"text": declined[-1].reason}
    if request.deliveries:
        task["output"] = [{"type": {"text": d.content_type},
                           "valueIdentifier": {"system": "urn:kizuna:envelope",
                                               "value": "0x" + d.commitment.hex()}}
                          for d in request.deliveries]
    return task


__all__ = [
    "ACKNOWLEDGED",
    "ANSWER_STATES",
    "CLOSED",
    "DAY",
    "DECLINED",
    "DEFAULT_DEADLINE_DAYS",
    "FULFILLED",
    "FULFILLED_IN_PART",
    "MAX_DEADLINE_DAYS",
    "MAX_DELIVERIES_PER_ANSWER",
    "MAX_DELIVERY_BYTES",
    "MAX_NOTE_BYTES",
    "MAX_REASON_CHARS",
    "MAX_TYPES",
    "OPEN",
    "OVERDUE",
    "TASK_STATUS",
    "Answer",
    "AskFields",
    "DataRequest",
    "Delivery",
    "answer_commitment",
    "can_become",
    "check_answer",
    "checked_fields",
    "fhir_task",
    "iso_utc",
    "request_commitment",
]
