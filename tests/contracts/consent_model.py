"""A small pure-Python model of consent, the oracle of the stateful test.

It restates IConsentLedger's rules, not the contract's code: a grant is live while it was not
revoked and kizuna.chain.liveness.grant_live holds (``now < expiresAt``, made in a block *after*
the pair's last revokeAll: a revokeAll wins over a grant of the same block) — the one Python home
of that rule, checked against the contract by the stateful test through this model; emergency
access covers every scope until its end; guardians act until their end date (exclusive); a grant
answers (closes) the provider's open request.
Every method that models a transaction returns the custom error the contract must raise
(name and arguments), or ``None`` when the transaction must succeed, in the order the interface
gives its checks. The caller applies the effects with the ``apply_*`` methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kizuna.chain.liveness import grant_live

Error = tuple[str, dict[str, Any]] | None
"""A custom error (name, arguments), or ``None`` for success."""

REQUEST_TTL = 14 * 86_400


@dataclass
class ConsentModel:
    grants: dict[tuple[str, str, bytes], tuple[int, int]] = field(default_factory=dict)
    """(patient, provider, scope) -> (expiresAt, grantedBlock) of the stored grant."""
    revoked_all: dict[tuple[str, str], int] = field(default_factory=dict)
    request_until: dict[tuple[str, str], int] = field(default_factory=dict)
    emergency_until: dict[tuple[str, str], int] = field(default_factory=dict)
    guardians: dict[tuple[str, str], int] = field(default_factory=dict)
    policy: dict[str, tuple[bool, int]] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)

    # --- views ----------------------------------------------------------------------------------

    def grant_of(self, patient: str, provider: str, scope: bytes, now: int) -> list[Any]:
        expires, block = self.grants.get((patient, provider, scope), (0, 0))
        return [expires, block, self.live(patient, provider, scope, now)]

    def live(self, patient: str, provider: str, scope: bytes, now: int) -> bool:
        stored = self.grants.get((patient, provider, scope))
        if stored is None:
            return False
        expires, block = stored
        return grant_live(granted_block=block, expires_at=expires,
                          revoked_all_block=self.revoked_all.get((patient, provider), 0), now=now)

    def access_expiry(self, patient: str, provider: str, scope: bytes, now: int) -> int:
        until = 0
        if self.live(patient, provider, scope, now):
            until = self.grants[(patient, provider, scope)][0]
        emergency = self.emergency_until.get((patient, provider), 0)
        if emergency > now and emergency > until:
            until = emergency
        return until

    def is_guardian(self, patient: str, guardian: str, now: int) -> bool:
        return self.guardians.get((patient, guardian), 0) > now

    # --- checks ---------------------------------------------------------------------------------

    def authorize(self, patient: str, caller: str, now: int) -> Error:
        """``_authorize``: the patient, or a live guardian of the patient."""
        if caller == patient or self.is_guardian(patient, caller, now):
            return None
        return ("ConsentLedgerUnauthorized", {"patient": patient, "caller": caller})

    @staticmethod
    def check_grant(expires: int, now: int) -> Error:
        if expires <= now:
            return ("ConsentLedgerInvalidExpiry", {"expiresAt": expires, "currentTime": now})
        return None

    def check_revoke(self, patient: str, provider: str, scope: bytes) -> Error:
        if (patient, provider, scope) not in self.grants:
            return ("ConsentLedgerNoGrant",
                    {"patient": patient, "provider": provider, "scopeId": scope})
        return None

    @staticmethod
    def check_appoint(patient: str, guardian: str, until: int, now: int) -> Error:
        if guardian == patient:
            return ("ConsentLedgerInvalidGuardian", {"guardian": guardian})
        if until <= now:
            return ("ConsentLedgerInvalidExpiry", {"expiresAt": until, "currentTime": now})
        return None

    def check_remove(self, patient: str, guardian: str) -> Error:
        if self.guardians.get((patient, guardian), 0) == 0:
            return ("ConsentLedgerNotGuardian", {"patient": patient, "guardian": guardian})
        return None

    @staticmethod
    def check_policy(allowed: bool, max_duration: int) -> Error:
        if allowed and max_duration == 0:
            return ("ConsentLedgerInvalidEmergencyDuration", {"duration": 0, "maxDuration": 0})
        return None

    def check_open_emergency(self, patient: str, provider: str, duration: int) -> Error:
        if not self.active.get(provider, False):
            return ("ConsentLedgerProviderNotVerified", {"provider": provider})
        allowed, max_duration = self.policy.get(patient, (False, 0))
        if not allowed:
            return ("ConsentLedgerEmergencyNotAllowed", {"patient": patient})
        if duration == 0 or duration > max_duration:
            return ("ConsentLedgerInvalidEmergencyDuration",
                    {"duration": duration, "maxDuration": max_duration})
        return None

    def check_close_emergency(self, patient: str, provider: str, caller: str, now: int) -> Error:
        if caller != provider:
            error = self.authorize(patient, caller, now)
            if error:
                return error
        if self.emergency_until.get((patient, provider), 0) <= now:
            return ("ConsentLedgerNoEmergencyAccess", {"patient": patient, "provider": provider})
        return None

    def check_request(self, provider: str) -> Error:
        if not self.active.get(provider, False):
            return ("ConsentLedgerProviderNotVerified", {"provider": provider})
        return None

    def check_close_request(self, patient: str, provider: str, caller: str, now: int) -> Error:
        if caller != provider:
            error = self.authorize(patient, caller, now)
            if error:
                return error
        if self.request_until.get((patient, provider), 0) <= now:
            return ("ConsentLedgerNoOpenRequest", {"patient": patient, "provider": provider})
        return None

    def care_event(self, patient: str, caller: str, provider: str, scope: bytes,
                   now: int) -> tuple[Error, bool]:
        """(error, flaggedForReview) of ``logCareEvent`` by ``caller``."""
        not_allowed = ("ConsentLedgerCareEventNotAllowed", {"patient": patient, "caller": caller})
        if caller == patient:
            return None, False
        if caller == provider:
            if self.live(patient, provider, scope, now):
                return None, False
            if self.request_until.get((patient, provider), 0) > now:
                return None, False
            if self.emergency_until.get((patient, provider), 0) > now:
                return None, True
            if self.is_guardian(patient, caller, now):
                return None, False
            return not_allowed, False
        if self.is_guardian(patient, caller, now):
            return None, False
        return not_allowed, False

    # --- effects --------------------------------------------------------------------------------

    def answered_request(self, patient: str, provider: str, now: int) -> list[tuple[str, Any]]:
        """The events a grant adds: it answers (closes) the provider's open request, if any."""
        if self.request_until.get((patient, provider), 0) <= now:
            return []
        return [("AccessRequestClosed", {"patient": patient, "provider": provider,
                                         "closedBy": patient})]

    def apply_grant(self, patient: str, provider: str, scopes: list[bytes], expires: int,
                    block: int, now: int) -> None:
        for scope in scopes:
            self.grants[(patient, provider, scope)] = (expires, block)
        if self.request_until.get((patient, provider), 0) > now:
            self.request_until[(patient, provider)] = 0  # answered by the grant

    def apply_revoke(self, patient: str, provider: str, scope: bytes) -> None:
        del self.grants[(patient, provider, scope)]

    def apply_revoke_all(self, patient: str, provider: str, block: int) -> None:
        self.revoked_all[(patient, provider)] = block
        self.request_until[(patient, provider)] = 0
        self.emergency_until[(patient, provider)] = 0

    def use_nonce(self, patient: str) -> None:
        self.nonces[patient] = self.nonces.get(patient, 0) + 1

    def future_times(self, now: int) -> list[int]:
        """Every end date the model holds that is still ahead: the interesting places to jump."""
        times = [e for e, _ in self.grants.values()]
        times += list(self.guardians.values())
        times += list(self.emergency_until.values()) + list(self.request_until.values())
        return sorted({t for t in times if t > now + 1})
