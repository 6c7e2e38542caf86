"""The use cases' test stack: the local stack of tests/support/local_stack.py (anvil with its
state on disk, so it can be stopped and started again, the contracts, the event index, the
embedded store, the SQLite database, the relayer, funded participants on the in-process
clients), one per module."""

from __future__ import annotations

import pytest
from local_stack import LocalStack


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> LocalStack:
    return local_stack
