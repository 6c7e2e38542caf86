"""Fixtures for the cryptography tests: Umbral keys for two providers and a stranger, grants.
(``patient_sk`` and ``record_id`` are in tests/conftest.py: the envelope tests in tests/storage
use them too.)"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from kizuna.access.grant import VerifiedGrant, placeholder_verified_grant
from kizuna.crypto import pre
from kizuna.types import Address, RecordId, ScopeId

PATIENT = Address("0x1111111111111111111111111111111111111111")
PROVIDER = Address("0x2222222222222222222222222222222222222222")


@pytest.fixture(scope="session")
def patient_signer() -> pre.UmbralSigner:
    return pre.UmbralSigner(pre.UmbralSecretKey.random())


@pytest.fixture(scope="session")
def provider_sk() -> pre.UmbralSecretKey:
    return pre.UmbralSecretKey.random()


@pytest.fixture(scope="session")
def stranger_sk() -> pre.UmbralSecretKey:
    return pre.UmbralSecretKey.random()


GrantFactory = Callable[..., VerifiedGrant]


@pytest.fixture
def make_grant() -> GrantFactory:
    """``make_grant(grantee_key, expires_in=3600)``: a placeholder VerifiedGrant (no chain yet)."""

    def make(grantee_key: pre.UmbralPublicKey, *, expires_in: int = 3600) -> VerifiedGrant:
        return placeholder_verified_grant(
            patient=PATIENT,
            grantee=PROVIDER,
            grantee_key=grantee_key,
            record_id=RecordId(os.urandom(32)),
            scope_id=ScopeId(os.urandom(32)),
            expires_at=int(time.time()) + expires_in,
        )

    return make
