"""The use cases' test stack, all real: an anvil node (state kept on disk, so it can be stopped and
started again), the Kizuna contracts deployed on it, the event index, the embedded content store
in a temporary directory, the SQLite service database, the relayer — and patients, providers and
guardians with funded keys, each using the in-process clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from service_stack import Stack

from kizuna.chain.connection import connect, web3_for
from kizuna.chain.deploy import deploy
from kizuna.chain.index.store import EventIndex
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.chain.transactions import TxPolicy
from kizuna.db import Database
from kizuna.services.context import ServiceContext
from kizuna.storage.embedded import EmbeddedStore


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("services")
    node = LocalNode(state_path=root / "anvil-state.json", log_path=root / "anvil.log")
    node.start()
    node.port = int(node.rpc_url.rsplit(":", 1)[1])  # a restart comes back on the same port
    try:
        keys = dev_private_keys(3)
        admin, relayer_key, funder = (LocalKeySigner(k) for k in keys)
        deployment = deploy(web3_for(node.rpc_url), Account.from_key(keys[0]), directory=None)
        chain = connect(node.rpc_url, deployment, policy=TxPolicy(timeout=30.0), timeout=5.0)
        index = EventIndex.for_chain(chain, root / "index.sqlite")
        store = EmbeddedStore(root / "store", fsync=False)
        db = Database.open(f"sqlite:///{root / 'service.db'}")
        ctx = ServiceContext.build(chain=chain, index=index, store=store, db=db)
        yield Stack(node=node, chain=chain, ctx=ctx, store=store,
                    relayer=Relayer(chain, relayer_key), admin=admin, funder=funder)
        db.dispose()
        index.close()
    finally:
        node.stop()
