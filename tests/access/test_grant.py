"""The VerifiedGrant type boundary: only the access check (for now: the placeholder) makes one."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import time

import pytest

from kizuna.access import grant as grant_module
from kizuna.access.grant import MAX_GRANT_AGE_S, VerifiedGrant, placeholder_verified_grant
from kizuna.crypto import pre
from kizuna.errors import AccessDenied
from kizuna.types import Address, RecordId, ScopeId

PATIENT = Address("0x1111111111111111111111111111111111111111")
PROVIDER = Address("0x2222222222222222222222222222222222222222")


def _fields() -> dict[str, object]:
    return {
        "patient": PATIENT,
        "grantee": PROVIDER,
        "grantee_key": pre.UmbralSecretKey.random().public_key,
        "record_id": RecordId(os.urandom(32)),
        "scope_id": ScopeId(os.urandom(32)),
        "expires_at": int(time.time()) + 60,
        "checked_at_block": 7,
        "head_timestamp": int(time.time()),
    }


def test_direct_construction_is_refused() -> None:
    with pytest.raises(TypeError, match="made only by the access check"):
        VerifiedGrant(**_fields())  # type: ignore[arg-type]


def test_placeholder_makes_one() -> None:
    fields = _fields()
    grant = placeholder_verified_grant(**fields)  # type: ignore[arg-type]
    assert isinstance(grant, VerifiedGrant)
    assert grant.checked_at_block == 7
    assert grant.record_id == fields["record_id"]
    assert "record_id=0x" in repr(grant)


def test_no_forging_by_replace_pickle_or_copy() -> None:
    grant = placeholder_verified_grant(**_fields())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="made only by the access check"):
        dataclasses.replace(grant, expires_at=2**40)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(grant)
    with pytest.raises(TypeError):
        copy.copy(grant)
    with pytest.raises(dataclasses.FrozenInstanceError):
        grant.expires_at = 2**40  # type: ignore[misc]


def test_ids_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="record_id"):
        placeholder_verified_grant(**{**_fields(), "record_id": RecordId(b"x")})  # type: ignore[arg-type]


def test_expiry_is_judged_in_chain_time() -> None:
    """A node whose clock is a day behind ours: its live grant is live; its expired one is not."""
    head = int(time.time()) - 86_400
    live = placeholder_verified_grant(
        **{**_fields(), "head_timestamp": head, "expires_at": head + 60}
    )  # type: ignore[arg-type]
    live.check_usable()
    expired = placeholder_verified_grant(
        **{**_fields(), "head_timestamp": head, "expires_at": head}
    )  # type: ignore[arg-type]
    with pytest.raises(AccessDenied, match="expired"):
        expired.check_usable()


def test_a_stale_decision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    grant = placeholder_verified_grant(**{**_fields(), "expires_at": 2**40})  # type: ignore[arg-type]
    grant.check_usable()
    later = time.monotonic() + MAX_GRANT_AGE_S + 1

    class _Clock:
        @staticmethod
        def monotonic() -> float:
            return later

    monkeypatch.setattr(grant_module, "time", _Clock)
    with pytest.raises(AccessDenied, match="re-run the access check"):
        grant.check_usable()
