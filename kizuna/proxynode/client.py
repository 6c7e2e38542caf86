"""The participants' side of threshold proxy nodes lives in :mod:`kizuna.client.threshold`
(the clients use it, and ``kizuna.client`` must not import back from here: a package cycle);
the names are kept here for the node's own tests and older callers."""

from __future__ import annotations

from kizuna.client.threshold import (
    ProxyNodeError,
    ThresholdRead,
    announce_record,
    hand_kfrags,
    threshold_read,
)

__all__ = ["ProxyNodeError", "ThresholdRead", "announce_record", "hand_kfrags", "threshold_read"]
