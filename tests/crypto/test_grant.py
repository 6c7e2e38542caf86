"""The VerifiedGrant type boundary: only the access check (for now: the placeholder) makes one."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import time

import pytest

from kizuna.access.grant import VerifiedGrant, placeholder_verified_grant
from kizuna.crypto import pre
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
