// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Kizuna typed ids
/// @notice User-defined value types for the ids the ledger handles, so that passing a scope where a
///         record is expected is a compile error. On the ABI they are plain `bytes32`.
/// @dev No health information is ever on-chain: a `RecordId` is 32 random bytes chosen by the
///      patient's client, a `ScopeId` is a scope label blinded per patient (a keyed hash computed
///      off-chain); the contracts treat both as opaque.

/// @notice 32 random bytes naming one record (never derived from its content).
type RecordId is bytes32;

/// @notice 32 bytes: a scope label blinded per patient (keyed hash), opaque to the chain.
type ScopeId is bytes32;

/// @notice What a care event is about. The event's `ref` commits to an encrypted payload that
///         holds the details; the kind alone is public.
enum CareEventKind {
    AdviceRequested, //  0: a request for advice
    AccessRequested, //  1: a request for access to (more of) the record
    BookingRequested, // 2: an appointment asked for
    BookingConfirmed, // 3: an appointment confirmed
    BookingCancelled, // 4: an appointment cancelled
    VisitReported, //    5: a visit report sent to the patient
    PrescriptionIssued, // 6: a prescription sent to the patient
    DataSent, //         7: data sent (to the patient or to another provider)
    // A patient's request for their records (right of access) and the provider's answers;
    // `ref` commits to the request (or answer) document held off-chain.
    DataRequested, //    8: a patient asked a provider for records
    DataRequestAcknowledged, // 9: the provider acknowledged the request
    DataRequestFulfilledInPart, // 10: the provider sent part of what was asked
    DataRequestFulfilled, // 11: the provider sent the rest (the request is fulfilled)
    DataRequestDeclined // 12: the provider declined, with a reason
}

using {eqRecordId as ==} for RecordId global;
using {eqScopeId as ==} for ScopeId global;

function eqRecordId(RecordId a, RecordId b) pure returns (bool) {
    return RecordId.unwrap(a) == RecordId.unwrap(b);
}

function eqScopeId(ScopeId a, ScopeId b) pure returns (bool) {
    return ScopeId.unwrap(a) == ScopeId.unwrap(b);
}
