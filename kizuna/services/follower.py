"""``IndexFollower``: keeps the event index synced and the proxy's key fragments honest.

Revocation is decided on-chain; a patient may revoke from any tool (``cast send``, another
instance, the web page's wallet) without telling this service. The follower makes the service
notice anyway: on every tick it syncs the index to the head, then compares the key fragments it
holds with the live grants the index knows, and deletes the fragments of every
(patient, scope, provider) whose grant is gone -- revoked (``AccessRevoked``), cut by
``AllAccessRevoked``, or expired. An open emergency access keeps nothing alive here: break-glass
reads are served from the patient's emergency kit only (``kizuna.services.emergency``), so a
dead grant's fragments must not outlive it just because the provider broke the glass.

The API runs one follower per cluster -- on the instance elected by
:mod:`kizuna.services.leader`, every ``follow_interval_s`` -- so ``kizuna serve``, ``kizuna up``
and the instances of a shared database delete within one interval of a revoke, a revokeAll, an
expiry (judged in the head block's time) or an emergency close, whoever sent it.

Deleting is confirmed on the chain first (``grantOf`` at the latest block): fragments uploaded
right after a grant that the index has not seen yet are never deleted by mistake. The access
check does not depend on the follower -- it reads the chain at the head on every read -- the
follower is what makes "revoke deletes the key fragments" hold for revokes made elsewhere.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import func, select

from kizuna.background import PeriodicTask
from kizuna.db import schema as t
from kizuna.services.context import ServiceContext
from kizuna.types import Address, ScopeId

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FollowResult:
    head_block: int
    deleted: tuple[tuple[Address, ScopeId, Address], ...]
    """(patient, scope, provider) whose key fragments were deleted in this tick."""


class IndexFollower(PeriodicTask):
    """Syncs ``ctx.index`` and deletes key fragments of grants that are no longer live."""

    thread_name = "kizuna-follower"

    def __init__(self, ctx: ServiceContext, *, interval_s: float = 2.0) -> None:
        super().__init__(interval_s=interval_s)
        self.ctx = ctx
        self._lock = threading.Lock()
        self._seen: tuple[int, bytes, int] | None = None
        """(head number, head hash, kfrag rows) of the last full pass: with the same head and
        the same rows nothing can have died since (expiry is judged in the head's time)."""

    def tick(self) -> FollowResult:
        """One pass: sync, then delete the fragments of dead grants."""
        with self._lock:
            head = self.ctx.index.head()
            with self.ctx.db.read() as conn:
                rows = int(conn.execute(select(func.count()).select_from(t.kfrags)).scalar_one())
                seen = (head.number, head.hash, rows)
                if seen == self._seen:
                    return FollowResult(head_block=head.number, deleted=())
                held = {(r[0], bytes(r[1]), r[2]) for r in conn.execute(
                    select(t.kfrags.c.patient, t.kfrags.c.scope_id, t.kfrags.c.provider)
                    .distinct())}
            live: dict[str, set[tuple[str, bytes]]] = {}
            for patient in {p for p, _, _ in held}:
                live[patient] = {(g.provider, bytes(g.scope_id))
                                 for g in self.ctx.index.index.grants_of(patient, at=head)}
            deleted: list[tuple[Address, ScopeId, Address]] = []
            ledger = self.ctx.chain.ledger
            for patient, scope, provider in sorted(held):
                if (provider, scope) in live[patient]:
                    continue
                grant = ledger.grant_of(patient, provider, ScopeId(scope))  # at "latest"
                if grant is not None and grant.live:
                    continue  # granted after the index's head: not ours to delete
                self.ctx.kfrags.delete(patient=patient, scope_id=ScopeId(scope),
                                       provider=provider)
                deleted.append((patient, ScopeId(scope), provider))
            self._seen = None if deleted else seen
            return FollowResult(head_block=head.number, deleted=tuple(deleted))

    def _pass(self) -> None:
        result = self.tick()
        if result.deleted:
            log.info("deleted key fragments of %d dead grants", len(result.deleted))


__all__ = ["FollowResult", "IndexFollower"]
