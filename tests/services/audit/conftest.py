"""The audit tests share one story (built once per module on eth-tester) and tamper with copies
of its database and content store, never with the story itself."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from audit_story import Story, build_story


@pytest.fixture(scope="module", params=["alone", "batch"])
def story(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The story with its records registered each alone, then in one batch: every test of
    it runs on both."""
    built = build_story(tmp_path_factory.mktemp("audit-story"), registered=request.param)
    yield built
    built.index.close()
    built.db.dispose()
