"""The event index: every Kizuna event in SQLite, incrementally, reorg-safe, and read at the
head (:class:`FreshIndex`) so that no access decision is made on stale state."""

from kizuna.chain.index.fresh import AccessDecision, FreshIndex
from kizuna.chain.index.store import EventIndex, IndexSource, StaleRead, Standing

__all__ = ["AccessDecision", "EventIndex", "FreshIndex", "IndexSource", "StaleRead", "Standing"]
