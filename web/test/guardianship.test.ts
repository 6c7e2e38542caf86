// The rules the guardians & emergency page checks before asking the wallet anything (each
// mirrors a revert of ConsentLedger.sol or a check of kizuna/services/guardians.py, so a bad
// input is refused with its field named instead of a failed simulation). The chain and API
// paths run in the browser test tests/web/test_web_care.py against a real stack.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError } from "../src/api/client.ts";
import { InputError, KizunaError } from "../src/core/errors.ts";
import {
  byEpoch, checkedGuardian, checkedPolicy, checkedUntil, explained, formatDuration, MAX_EMERGENCY_SECONDS,
} from "../src/patient/guardianship.ts";

const PATIENT = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";
const OTHER = "0x976ea74026e726554db657fa54763abd0c3a0aa9";

function refused(call: () => unknown, field: string, reason: RegExp): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof InputError, `not an InputError: ${String(error)}`);
    assert.equal(error.field, field);
    assert.match(error.reason, reason);
    return true;
  });
}

test("a guardian is another account, checksummed", () => {
  assert.equal(checkedGuardian(`  ${OTHER}  `, PATIENT), "0x976EA74026E726554dB657fA54763abd0C3a0aa9");
  refused(() => checkedGuardian(PATIENT.toLowerCase(), PATIENT), "guardian", /your own guardian/);
  refused(() => checkedGuardian("0x0000000000000000000000000000000000000000", PATIENT), "guardian", /zero address/);
  refused(() => checkedGuardian("dr-tanaka", PATIENT), "guardian", /not an Ethereum address/);
  refused(() => checkedGuardian("0x976ea74026e726554db657fa54763abd0c3a0aa", PATIENT), "guardian", /not an Ethereum address/);
});

test("a guardian's end date is after the chain's now, within uint64", () => {
  const now = 1_800_000_000;
  assert.equal(checkedUntil(now + 1, now), now + 1);
  refused(() => checkedUntil(now, now), "until", /already past/);
  refused(() => checkedUntil(now - 86_400, now), "until", /already past/);
  refused(() => checkedUntil(1.5, now), "until", /a date/);
  refused(() => checkedUntil(Number.NaN, now), "until", /a date/);
  refused(() => checkedUntil(2 ** 64, now), "until", /a date/);
});

test("an allowed policy needs a maximum duration, at most a month", () => {
  assert.deepEqual(checkedPolicy(true, 3600), { allowed: true, maxDuration: 3600 });
  assert.deepEqual(checkedPolicy(false, 0), { allowed: false, maxDuration: 0 });
  assert.deepEqual(checkedPolicy(true, MAX_EMERGENCY_SECONDS), { allowed: true, maxDuration: MAX_EMERGENCY_SECONDS });
  refused(() => checkedPolicy(true, 0), "max_duration", /needs a maximum duration/);
  refused(() => checkedPolicy(true, -1), "max_duration", /whole number/);
  refused(() => checkedPolicy(true, 90.5), "max_duration", /whole number/);
  refused(() => checkedPolicy(true, MAX_EMERGENCY_SECONDS + 1), "max_duration", /at most 30 days/);
  refused(() => checkedPolicy("yes" as unknown as boolean, 60), "allowed", /true or false/);
});

test("kit scopes go one call per key epoch, in epoch order", () => {
  const groups = byEpoch([
    { label: "MedicationRequest", epoch: 2 },
    { label: "AllergyIntolerance", epoch: 0 },
    { label: "Condition", epoch: 2 },
  ]);
  assert.deepEqual(groups.map(([epoch, items]) => [epoch, items.map((i) => i.label)]), [
    [0, ["AllergyIntolerance"]],
    [2, ["MedicationRequest", "Condition"]],
  ]);
  assert.deepEqual(byEpoch([]), []);
});

test("durations read as people say them", () => {
  assert.equal(formatDuration(1), "1 second");
  assert.equal(formatDuration(45 * 60), "45 minutes");
  assert.equal(formatDuration(12 * 3600), "12 hours");
  assert.equal(formatDuration(86_400 + 3600), "1 day 1 hour");
  assert.equal(formatDuration(30 * 86_400), "30 days");
});

test("the ledger's refusals are told for people, with their field when they have one", () => {
  const gone = explained(new ApiError(403, "AccessDenied", `ConsentLedgerNotGuardian(patient=${PATIENT}, guardian=${OTHER})`));
  assert.ok(gone instanceof KizunaError && !(gone instanceof ApiError));
  assert.match(gone.shortMessage, /not a guardian of this record any more/);
  const past = explained(new ApiError(422, "InputError", "ConsentLedgerInvalidExpiry(expiresAt=1, currentTime=2)"));
  assert.ok(past instanceof InputError);
  assert.equal(past.field, "until");
  const other = new ApiError(503, "ChainUnavailable", "the node is not answering");
  assert.equal(explained(other), other);
  const unknown = new ApiError(403, "AccessDenied", "ConsentLedgerSomethingNew(x=1)");
  assert.equal(explained(unknown), unknown);
  const plain = new Error("no");
  assert.equal(explained(plain), plain);
});
