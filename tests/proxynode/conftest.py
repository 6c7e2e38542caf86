"""Fixtures of the proxy node tests: three real ``kizuna proxy serve`` processes (three
databases, three indexes, three Ethereum keys) on the session's anvil, next to a service core
(its chain and content store, never its database). The module's one deployment, service core
and three nodes are shared by its tests (``Cluster`` replaces a node a test killed or
altered); each test makes its own patients and providers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from proxynode_harness import Cluster, NodeProcess

from kizuna.chain.localnode import LocalNode


@pytest.fixture(scope="module")
def node_cluster(anvil: LocalNode, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Cluster]:
    from chainenv import _anvil_env
    from harness import make_stack

    root = tmp_path_factory.mktemp("proxy-nodes")
    stack = make_stack(_anvil_env(anvil), root)
    made = Cluster(stack, root)
    try:
        yield made
    finally:
        made.stop()
        stack.db.dispose()


@pytest.fixture
def node_stack(node_cluster: Cluster, request: pytest.FixtureRequest) -> object:
    """The module's service core, its records registered alone or, with ``parametrize(
    "node_stack", REGISTERED, indirect=True)``, in a batch (set for each test)."""
    stack = node_cluster.stack
    stack.batched = getattr(request, "param", "alone") == "in a batch"  # type: ignore[attr-defined]
    return stack


@pytest.fixture
def three_nodes(node_cluster: Cluster, node_stack: object) -> list[NodeProcess]:
    """The module's three nodes, alive and untouched by any earlier test."""
    return node_cluster.ready()
