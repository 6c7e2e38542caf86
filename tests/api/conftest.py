"""API fixtures: the stack (tests/api/stack_fixtures.py: the folder's own anvil — faults tests
stop nodes; no other suite shares its keys —, a deployment, its settings, the real API, ``http``
and ``people``), and ``ctx``, the services' context the settings name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stack_fixtures import *  # noqa: F403  (registers the stack fixtures for this folder)

from kizuna.config import Settings
from kizuna.services.context import ServiceContext, close_context, open_context


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    """The services' context the settings name, opened as the API opens it (real parts)."""
    opened = open_context(settings)
    yield opened
    close_context(opened)
