"""The role-command tests' fixtures (test_cli_admin, _audit, _data_requests, _export,
_failures, _patient, _patient_import, _provider, _provider_export, _proxies_elsewhere,
_registrar, _research, _sharing), registered by tests/cli/conftest.py: one real
``kizuna up --demo`` (anvil, contracts, embedded store, database, the API under uvicorn, on
free ports of 127.0.0.1) per test session
(per xdist worker), with the demo's people (aiko, kenji, dr-tanaka, dr-sato, registrar) plus
keys the tests add: ``auditor`` (anvil account 8, granted the auditor role and ANCHOR_ROLE by the
deployer) and ``newdoc`` (account 9, not yet a provider).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import UpProcess
from roles_stack import PASSPHRASE, Stack

from kizuna.chain.localnode import dev_private_keys, free_port

AUDITOR, NEWDOC = 8, 9


def _fund(rpc_url: str, deployment_file: Path, account: str) -> None:
    """1 ETH from the deployer (anvil account 0), for a key's own transactions."""
    from kizuna.chain.connection import connect
    from kizuna.chain.models import ContractCall
    from kizuna.chain.signers import LocalKeySigner

    chain = connect(rpc_url, deployment_file)
    chain.sender.transact(ContractCall(to=account, data=b"", value=10**18),
                          LocalKeySigner(dev_private_keys(1)[0]), gas=21_000)


def _grant_auditor(rpc_url: str, deployment_file: Path, account: str) -> None:
    """The auditor role, and ANCHOR_ROLE (its own account: no nonce race with the stack's
    anchorer) so that `kizuna audit anchor --local` can be run with this key."""
    from kizuna.api.auth import AUDITOR_ROLE
    from kizuna.chain.connection import connect
    from kizuna.chain.models import ContractCall
    from kizuna.chain.signers import LocalKeySigner

    chain = connect(rpc_url, deployment_file)
    access_log = chain.contract("AccessLog")
    admin = LocalKeySigner(dev_private_keys(1)[0])  # the deployer: AccessLog's admin
    for role in (AUDITOR_ROLE, chain.access_log.anchor_role()):
        data = access_log.encode_abi("grantRole", args=[role, account])
        chain.sender.transact(ContractCall(to=access_log.address,
                                           data=bytes.fromhex(data[2:])), admin)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("roles") / "home"
    # a new interpreter: test_cli_up checks how a port in use names this `kizuna up`
    up = UpProcess(home, "--demo", "--port", str(free_port()), "--rpc-port", str(free_port()),
                   fresh=True)
    try:
        info = up.ready(timeout=600)
        made = Stack(home=home, up=up, api_url=info["api_url"], rpc_url=info["rpc_url"],
                     deployment_file=Path(info["deployment_file"]))
        keys = dev_private_keys(10)
        for name, index in (("auditor", AUDITOR), ("newdoc", NEWDOC)):  # set-up: in process
            made.keyring.import_private_key(name, keys[index], PASSPHRASE, light_kdf=True)
        _grant_auditor(made.rpc_url, Path(info["deployment_file"]), made.address("auditor"))
        yield made
    finally:
        up.stop()


@pytest.fixture
def new_patient(stack: Stack, request: pytest.FixtureRequest) -> str:
    """A fresh patient key, funded for its own transactions (revokeAll, guardians)."""
    name = "p-" + request.node.name.lower().replace("_", "-")[:40]
    # in process, as `kizuna keys create --light-kdf` does (that command: test_cli_keys)
    address = stack.keyring.create(name, PASSPHRASE, light_kdf=True)
    _fund(stack.rpc_url, stack.deployment_file, address)
    return name
