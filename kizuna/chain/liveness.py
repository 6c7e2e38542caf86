"""The ConsentLedger's grant liveness rule, the one home of it in Python.

The contract (``_isLive`` / ``_accessExpiry`` in contracts/ConsentLedger.sol): the grant stored
for ``(patient, provider, scope)`` is live at a block whose time is ``now`` when it was made in a
block *strictly after* the pair's last ``revokeAll`` (same block: revokeAll wins, whatever the
order of the transactions) and ``expires_at > now``. A ``revoke`` deletes the stored grant; a new
grant overwrites it. Access is a live grant or an emergency access open until ``> now`` (a
``revokeAll`` closes it). ``now`` is always a block timestamp, never the wall clock.

Three spellings of the one rule, each tested against the others in tests/chain/test_liveness.py:

* :func:`grant_live` — the predicate, for a stored grant (the test model, anything holding a
  grant and the pair's revokeAll block);
* :data:`LIVE_SQL` / :data:`NOT_REVOKED_ALL_SQL` — the same predicate over the index's
  projections (``grants g LEFT JOIN revoked_all r``), for the index's queries and handlers;
* :class:`ConsentReplay` — the ledger's consent history folded from its events, answering the
  rule at any past block (the audit's ``access_at``) and how each grant ended (the FHIR export's
  ``Consent`` resources).

The page's copy of the rule is web/src/core/consent.ts.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal


def grant_live(*, granted_block: int, expires_at: int, revoked_all_block: int, now: int) -> bool:
    """``_isLive``: made after the pair's last revokeAll's block (0: none), and not expired."""
    return granted_block > revoked_all_block and expires_at > now


NOT_REVOKED_ALL_SQL = "g.granted_block > COALESCE(r.block_number, 0)"
"""The revokeAll half of :func:`grant_live` over ``grants g LEFT JOIN revoked_all r``."""

LIVE_SQL = f"g.expires_at > ? AND {NOT_REVOKED_ALL_SQL}"
""":func:`grant_live` over ``grants g LEFT JOIN revoked_all r``; its one parameter is ``now``."""


@dataclass(frozen=True, slots=True)
class GrantState:
    """What ``(patient, provider, scope)``'s grant slot held after one event."""

    block_number: int
    log_index: int
    tx_hash: bytes
    expires_at: int | None
    """``None``: cleared by ``revoke``."""


@dataclass(frozen=True, slots=True)
class GrantAt:
    """The ledger's ``grantOf`` at one block, rebuilt from the events."""

    grant: GrantState | None
    """The slot's last state at the block (``expires_at is None``: revoked); ``None``: never
    written."""
    revoked_all_block: int
    """The pair's last revokeAll at or before the block (0: none)."""
    live: bool


EndKind = Literal["revoke-all-same-block", "revoke-all", "revoke", "replaced"]


@dataclass(frozen=True, slots=True)
class GrantEnd:
    """The event that ended a grant (its expiry is the caller's: it needs block times)."""

    kind: EndKind
    """``revoke-all-same-block``: never live (a revokeAll of its own block); ``revoke-all``: a
    later revokeAll; ``revoke``: an ``AccessRevoked``; ``replaced``: a newer grant."""
    block_number: int
    tx_hash: bytes


Triple = tuple[str, str, bytes]
Pair = tuple[str, str]


class ConsentReplay:
    """The ConsentLedger's consent events, folded in chain order (feed :meth:`add` in order)."""

    def __init__(self) -> None:
        self._grants: dict[Triple, list[GrantState]] = defaultdict(list)
        self._revoke_all: dict[Pair, list[tuple[int, bytes]]] = defaultdict(list)
        self._emergency: dict[Pair, list[tuple[int, int]]] = defaultdict(list)  # (block, until)

    def add(self, name: str, args: Mapping[str, Any], *, block_number: int, log_index: int,
            tx_hash: bytes) -> None:
        """Fold one ConsentLedger event (any other name is ignored)."""
        a = args
        if name in ("AccessGranted", "AccessGrantedBatch"):
            scopes = a["scopeIds"] if name == "AccessGrantedBatch" else [a["scopeId"]]
            for scope in scopes:
                self._grants[(a["patient"], a["provider"], bytes(scope))].append(
                    GrantState(block_number, log_index, tx_hash, int(a["expiresAt"])))
        elif name == "AccessRevoked":
            self._grants[(a["patient"], a["provider"], bytes(a["scopeId"]))].append(
                GrantState(block_number, log_index, tx_hash, None))
        elif name == "AllAccessRevoked":
            pair = (a["patient"], a["provider"])
            self._revoke_all[pair].append((block_number, tx_hash))
            self._emergency[pair].append((block_number, 0))  # revokeAll resets the whole pair
        elif name == "EmergencyAccessOpened":
            self._emergency[(a["patient"], a["provider"])].append((block_number, int(a["until"])))
        elif name == "EmergencyAccessClosed":
            self._emergency[(a["patient"], a["provider"])].append((block_number, 0))

    def grant_at(self, patient: str, provider: str, scope_id: bytes, block_number: int, *,
                 now: int) -> GrantAt:
        """``grantOf`` after every event of blocks ``<= block_number``, at time ``now``."""
        states = self._grants.get((patient, provider, bytes(scope_id)), [])
        at = bisect.bisect_right([s.block_number for s in states], block_number)
        grant = states[at - 1] if at else None
        revokes = [b for b, _ in self._revoke_all.get((patient, provider), []) if b <= block_number]
        revoked_all = revokes[-1] if revokes else 0
        live = (grant is not None and grant.expires_at is not None
                and grant_live(granted_block=grant.block_number, expires_at=grant.expires_at,
                               revoked_all_block=revoked_all, now=now))
        return GrantAt(grant, revoked_all, live)

    def emergency_until(self, patient: str, provider: str, block_number: int) -> int:
        """The pair's emergency access end after block ``block_number`` (0: none open)."""
        opened = [until for block, until in self._emergency.get((patient, provider), [])
                  if block <= block_number]
        return opened[-1] if opened else 0

    def grant_history(self) -> Iterator[tuple[Triple, list[GrantState]]]:
        """Every (patient, provider, scope) with its grant slot's states, in chain order."""
        yield from self._grants.items()

    def revoke_all_blocks(self, patient: str, provider: str) -> list[tuple[int, bytes]]:
        """The pair's revokeAlls: (block, tx hash) of each, in chain order."""
        return list(self._revoke_all.get((patient, provider), []))

    def end_of(self, triple: Triple, position: int) -> GrantEnd | None:
        """The event that ended the grant at ``position`` of ``triple``'s states (a grant, not
        a revocation): a revokeAll of its block or later (before the slot's next state, or in
        that state's block: revokeAll wins there too), else the next state; ``None``: none did
        (it is live until its expiry)."""
        states = self._grants.get(triple, [])
        state = states[position]
        following = states[position + 1] if position + 1 < len(states) else None
        for block, tx in self._revoke_all.get((triple[0], triple[1]), []):
            if block >= state.block_number and (following is None
                                                or block <= following.block_number):
                kind: EndKind = ("revoke-all-same-block" if block == state.block_number
                                 else "revoke-all")
                return GrantEnd(kind, block, tx)
        if following is None:
            return None
        return GrantEnd("revoke" if following.expires_at is None else "replaced",
                        following.block_number, following.tx_hash)

    def denials_after(self, patient: str, provider: str, scope_id: bytes,
                      after_block: int) -> list[tuple[int, bytes]]:
        """Revokes of the scope and revokeAlls of the pair in blocks after ``after_block``:
        (block, tx hash) of each, in chain order."""
        found = [(s.block_number, s.tx_hash)
                 for s in self._grants.get((patient, provider, bytes(scope_id)), [])
                 if s.expires_at is None and s.block_number > after_block]
        found += [(b, tx) for b, tx in self._revoke_all.get((patient, provider), [])
                  if b > after_block]
        return sorted(found)
