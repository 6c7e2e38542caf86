"""The running ``kizuna up --demo`` the browser tests open the page of: anvil, the contracts,
the embedded store, the database and the API serving the web app, on free ports of 127.0.0.1,
in a throw-away KIZUNA_HOME. A module of its own, not conftest.py (every test package has a
``conftest``; ``from conftest import`` would pick whichever was imported first)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from cli_harness import Result, UpProcess, clean_env, run
from eth_account import Account
from eth_account.signers.local import LocalAccount

from kizuna.chain.localnode import free_port, free_port_block

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.chain.signers import LocalKeySigner
    from kizuna.client.api_service import ApiService
    from kizuna.client.patient import PatientClient
    from kizuna.client.provider import ProviderClient

PASSPHRASE = "kizuna-demo"


@cache
def _unlocked(keystore: Path) -> LocalAccount:
    document = json.loads(keystore.read_text(encoding="utf-8"))
    account: LocalAccount = Account.from_key(Account.decrypt(document, PASSPHRASE))
    return account


@dataclass
class WebStack:
    """The stack and its addresses."""

    home: Path
    up: UpProcess
    web_url: str
    """The page, ``http://127.0.0.1:<port>/``."""
    api_url: str
    rpc_url: str
    chain_id: int
    deployment_file: Path

    def demo_account(self, name: str) -> LocalAccount:
        """The demo's ``name`` (aiko, kenji, dr-tanaka, ...): its key, from its keystore. Each
        keystore is unlocked once per session (a key never changes under a running stack; every
        unlock is a scrypt, and the tests ask for these keys hundreds of times)."""
        return _unlocked(self.home / "keys" / f"{name}.json")

    def kizuna(self, *args: str, timeout: float = 180) -> Result:
        """Run ``kizuna`` against this stack (its home, the demo's passphrase)."""
        env = clean_env(self.home, KIZUNA_PASSPHRASE=PASSPHRASE)
        return run(self.home, *args, env=env, timeout=timeout)

    @contextmanager
    def provider(self, name: str) -> Iterator[ProviderClient]:
        """The demo's provider ``name`` in this process: the client ``kizuna provider ...``
        builds (ProviderClient over the API, signed in with the same key), without a CLI
        process per check (~1 CPU-s each: interpreter, imports, keystore, sign-in). The CLI
        itself is tested in tests/cli. Re-encryption by the service (1-of-1): a stack with
        proxy nodes is read through ``kizuna provider read``, which finds them."""
        from kizuna.client.provider import ProviderClient

        with self._signed_in(name) as (signer, service, chain):
            yield ProviderClient(signer=signer, service=service, chain=chain)

    @contextmanager
    def patient(self, name: str) -> Iterator[PatientClient]:
        """The demo's patient ``name`` in this process, as ``kizuna patient ...`` builds it
        (see :meth:`provider`)."""
        from kizuna.client.patient import PatientClient

        with self._signed_in(name) as (signer, service, chain):
            client = PatientClient(signer=signer, service=service, chain=chain)
            client.ensure_inbox_key()  # as the CLI's patient does the first time
            yield client

    @contextmanager
    def _signed_in(self, name: str) -> Iterator[tuple[LocalKeySigner, ApiService,
                                                      Callable[[], Chain]]]:
        from kizuna.chain.connection import connect
        from kizuna.chain.rpc import ChainReader
        from kizuna.chain.signers import LocalKeySigner
        from kizuna.client.api_service import ApiService
        from kizuna.client.http import ApiClient

        signer = LocalKeySigner("0x" + bytes(self.demo_account(name).key).hex())
        api = ApiClient(self.api_url, timeout=120.0)
        api.login(signer)
        chain = cache(lambda: connect(self.rpc_url, self.deployment_file))  # when first needed
        # reads check commitments through the lean reader, as the CLI's do (no web3)
        service = ApiService(api, chain, reader=ChainReader.connect(self.rpc_url,
                                                                    self.deployment_file))
        try:
            yield signer, service, chain
        finally:
            service.close()

    def grant_auditor(self, account: str) -> None:
        """The auditor role in AccessLog for ``account``, granted by the deployer (its admin)."""
        from kizuna.api.auth import AUDITOR_ROLE
        from kizuna.chain.connection import connect
        from kizuna.chain.localnode import dev_private_keys
        from kizuna.chain.models import ContractCall
        from kizuna.chain.signers import LocalKeySigner

        chain = connect(self.rpc_url, self.deployment_file)
        access_log = chain.contract("AccessLog")
        data = access_log.encode_abi("grantRole", args=[AUDITOR_ROLE, account])
        chain.sender.transact(ContractCall(to=access_log.address, data=bytes.fromhex(data[2:])),
                              LocalKeySigner(dev_private_keys(1)[0]))

    def provider_reads(self, provider: str, patient: str, count: int, *,
                       threads: int = 4) -> list[int]:
        """``count`` real reads by the demo's ``provider`` of the records of ``patient`` it may
        read (round robin): each a fresh ``ReadRequest`` signed with the provider's key and
        served by the API (capsule fragments made, a receipt stored), as ``kizuna provider
        read`` asks; the ciphertext is not fetched or decrypted (the receipt is the same).
        ``threads`` providers' sessions at once, as several of the provider's devices would.
        The receipts' seqs."""
        from concurrent.futures import ThreadPoolExecutor

        from kizuna.chain.connection import connect
        from kizuna.chain.signers import LocalKeySigner
        from kizuna.client.api_service import ApiService
        from kizuna.client.http import ApiClient
        from kizuna.receipts.request import ReadRequest

        signer = LocalKeySigner("0x" + bytes(self.demo_account(provider).key).hex())
        patient_address = self.demo_account(patient).address

        def reads(share: range) -> list[int]:
            api = ApiClient(self.api_url, timeout=120.0)
            api.login(signer)
            service = ApiService(api, connect(self.rpc_url, self.deployment_file))
            try:
                records = [r.record_id for r in service.readable_records(
                    provider=signer.address, patient=patient_address)]
                assert records, f"{provider} may read nothing of {patient}'s"
                domain = service.proxy_domain()
                seqs = []
                for n in share:
                    request = ReadRequest.new(provider=signer.address, patient=patient_address,
                                              record_id=records[n % len(records)])
                    grant = service.read(request=request,
                                         signature=signer.sign_typed_data(
                                             request.typed_data(domain)))
                    seqs.append(grant.receipt_seq)
                return seqs
            finally:
                service.close()

        with ThreadPoolExecutor(threads) as pool:
            shares = [range(i, count, threads) for i in range(threads)]
            return [seq for done in pool.map(reads, shares) for seq in done]

    def anchor(self, auditor_key: str) -> int:
        """Anchor every pending receipt now (``POST /auditor/anchor`` as an auditor, instead of
        waiting for the stack's schedule); how many were anchored."""
        import httpx

        from kizuna.chain.signers import LocalKeySigner
        from kizuna.client.http import ApiClient

        with ApiClient(self.api_url, timeout=300.0) as api:
            token = api.login(LocalKeySigner(auditor_key)).token
        answer = httpx.post(f"{self.api_url}/auditor/anchor", timeout=300.0,
                            headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()
        return int(answer.json()["anchored"])


def start(base: Path) -> WebStack:
    """Start ``kizuna up --demo`` under ``base`` and wait until it serves; the caller stops
    ``stack.up`` (also when this raises, nothing is left: a failed start is stopped here)."""
    home = base / "home"
    up = UpProcess(home, "--demo", "--port", str(free_port()), "--rpc-port", str(free_port()))
    try:
        info = up.ready(timeout=600)
    except BaseException:
        up.stop()
        raise
    api_url = str(info["api_url"]).rstrip("/")
    return WebStack(home=home, up=up, web_url=str(info.get("web_url") or f"{api_url}/"),
                    api_url=api_url, rpc_url=str(info["rpc_url"]), chain_id=int(info["chain_id"]),
                    deployment_file=Path(info["deployment_file"]))


@dataclass
class ThresholdStack(WebStack):
    """A demo stack with threshold proxy nodes: their URLs and the service's own database."""

    proxy_urls: list[str] = field(default_factory=list)
    service_db: Path = Path()


@contextmanager
def threshold_stack(home: Path) -> Iterator[ThresholdStack]:
    """``kizuna up --demo --proxies 3 --threshold 2`` in ``home`` (the nodes on the API's port +
    801..803), stopped afterwards."""
    api_port = free_port_block([0, 801, 802, 803])
    up = UpProcess(home, "--demo", "--port", str(api_port), "--rpc-port", str(free_port()),
                   "--proxies", "3", "--threshold", "2")
    try:
        info = up.ready(timeout=600)
        api_url = str(info["api_url"]).rstrip("/")
        yield ThresholdStack(
            home=home, up=up, web_url=f"{api_url}/", api_url=api_url,
            rpc_url=str(info["rpc_url"]), chain_id=int(info["chain_id"]),
            deployment_file=Path(info["deployment_file"]),
            proxy_urls=list(info["proxies"]["urls"]),
            service_db=Path(str(info["database_url"]).removeprefix("sqlite:///")))
    finally:
        up.stop()


def node_pid(home: Path, number: int) -> int:
    """The process serving proxy node ``number`` of this home (found by its key file's path on
    its command line; killed by that pid only)."""
    key_file = str(home / "proxies" / str(number) / "node.key").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in args and key_file in args:
            return int(entry.name)
    raise AssertionError(f"no process serves proxy node {number}")


def kill_node(home: Path, number: int) -> None:
    """Kill proxy node ``number`` (SIGKILL: it dies as a crashed machine would) and wait for it."""
    pid = node_pid(home, number)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and b"Z" not in (
            Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1][:3]):
        assert time.monotonic() < deadline, f"proxy node {number} did not stop"
        time.sleep(0.1)
