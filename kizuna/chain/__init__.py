"""Everything that talks to Ethereum: artifacts, deployments, agents, signers, event index.

The package re-exports nothing: callers import from the module that defines a name
(``from kizuna.chain.connection import connect``), so that importing a light module such as
``kizuna.chain.localnode`` or ``kizuna.chain.artifacts`` does not pull in web3. ``__all__``
lists the public modules (pinned by tests/chain/test_chain_surface.py). See docs/chain.md for
the layers.
"""

__all__ = [
    "agents",
    "artifacts",
    "compile",
    "connection",
    "deploy",
    "eip712",
    "index",
    "keystore",
    "liveness",
    "localnode",
    "models",
    "relayer",
    "reverts",
    "rpc",
    "signers",
    "transactions",
]
