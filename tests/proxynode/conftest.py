"""Fixtures of the proxy node tests: three real ``kizuna proxy serve`` processes (three
databases, three indexes, three Ethereum keys) on the session's anvil, next to the service
core of ``anvil_stack`` (its chain and content store, never its database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from proxynode_harness import NodeProcess, start_node

from kizuna.stack.children import wait_healthy


@pytest.fixture
def three_nodes(anvil_stack: object, tmp_path: Path) -> Iterator[list[NodeProcess]]:
    nodes = [start_node(anvil_stack, tmp_path, f"node{i}") for i in range(3)]
    try:
        for i, node in enumerate(nodes):
            wait_healthy(lambda n=node: n.process.poll() is None, node.endpoint,  # type: ignore[misc]
                         what=f"proxy node {i}", log_path=node.log_path, timeout_s=90,
                         request_timeout_s=5)
        yield nodes
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.terminate()
                node.process.wait(10)
