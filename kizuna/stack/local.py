"""The whole local stack of ``kizuna up``: chain, contracts, content store, database, API.

:class:`LocalStack` starts, in order, each part on 127.0.0.1 and stops them in reverse:

1. the home's lock (:mod:`kizuna.stack.lock`: one stack per home), the anvil a killed
   ``kizuna up`` of this home left running stopped, and a check that the ports are free
   (naming the process in the way);
2. anvil with its state in ``$KIZUNA_HOME/chain/anvil-state.json`` (dumped every 5 s and on
   stop, loaded on start: the chain survives a restart); on Linux it dies with this process
   (``PR_SET_PDEATHSIG``), so a ``kizuna up`` killed with SIGKILL leaves no anvil on the port;
3. the contracts: deployed on first start (deployment file in ``$KIZUNA_HOME/deployments``),
   verified on every later start — a chain reset is reported, never silently redeployed over;
4. the content store: embedded in ``$KIZUNA_HOME/store``, or a local js-ipfs node
   (``$KIZUNA_HOME/ipfs``) with ``ipfs=True``;
5. the service context (event index, database in ``$KIZUNA_HOME``) and, with ``demo=True``,
   the demo (:mod:`kizuna.stack.demo`);
6. the API under uvicorn, in a thread of this process.

The roles of the local deployment are anvil's development accounts: 0 deploys, 1 is the
registrar, 2 anchors receipts, 3 relays gasless actions. On first start the home's
``config.toml`` is written with a fresh session secret and the anchorer's and relayer's keys
(mode 0600), so ``kizuna config`` shows exactly what the API runs with.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account import Account

from kizuna.chain.connection import load_deployment_file, web3_for
from kizuna.chain.deploy import Deployment, deploy, verify_deployment
from kizuna.chain.localnode import LocalNode, dev_private_keys
from kizuna.config import Settings
from kizuna.errors import DeploymentError, KizunaError, NodeUnreachable, WrongChain
from kizuna.stack.demo import (
    ANCHORER_ACCOUNT,
    REGISTRAR_ACCOUNT,
    RELAYER_ACCOUNT,
    DemoSummary,
    Step,
    create_demo,
    no_progress,
)
from kizuna.stack.home import DEFAULT_RPC_PORT, KizunaHome, load_settings
from kizuna.stack.lock import (
    StackLock,
    check_ports_free,
    listener_pid,
    read_lock,
    stop_leftover_anvil,
)

if TYPE_CHECKING:  # imported where the one-instance stack starts its API (_start_api)
    import uvicorn

log = logging.getLogger("kizuna.stack")

PROXY_PORT_OFFSET = 801
"""Proxy nodes listen from ``api_port + 801`` (8801 with the default API port)."""
API_START_TIMEOUT_S = 30.0


class ChainReset(DeploymentError):
    """The deployment file names contracts the chain does not have (its state was reset)."""


@dataclass(frozen=True, slots=True)
class StackOptions:
    """How to run the stack (``kizuna up``'s options)."""

    home: KizunaHome
    api_port: int | None = None
    """None: the configured ``api_port`` (default 8000)."""
    rpc_port: int = DEFAULT_RPC_PORT
    ipfs: bool = False
    demo: bool = False
    config_file: Path | None = None
    instances: int = 1
    """API instances: 1 serves in this process; more run as ``kizuna serve`` processes on
    consecutive ports from ``api_port`` (:mod:`kizuna.stack.instances`)."""
    database_url: str | None = None
    """None: the home's SQLite file; else this database (e.g. ``postgresql://...``)."""
    proxies: int = 0
    """Threshold proxy nodes (``kizuna proxy serve`` processes, :mod:`kizuna.stack.proxies`)
    on consecutive ports from ``api_port + 801``; 0: none (the service's 1-of-1)."""
    threshold: int | None = None
    """Nodes a read needs (None: 2 with at least 3 nodes, else 1)."""


@dataclass(frozen=True, slots=True)
class StackInfo:
    """Where everything is, once the stack runs."""

    home: Path
    pid: int
    rpc_url: str
    chain_id: int
    api_url: str
    docs_url: str
    web_url: str
    store: str
    database_url: str
    deployment_file: Path
    deployed_now: bool
    contracts: dict[str, str]
    keys_dir: Path
    config_file: Path
    logs_dir: Path
    demo: DemoSummary | None
    api_urls: tuple[str, ...] = ()
    """Every API instance's URL (the first is ``api_url``)."""
    proxy_urls: tuple[str, ...] = ()
    """Every threshold proxy node's URL (docs/proxies.md); empty without ``--proxies``."""
    proxy_threshold: int = 1
    proxy_registry: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home), "pid": self.pid, "rpc_url": self.rpc_url,
            "chain_id": self.chain_id, "api_url": self.api_url, "docs_url": self.docs_url,
            "web_url": self.web_url, "store": self.store, "database_url": self.database_url,
            "deployment_file": str(self.deployment_file), "deployed_now": self.deployed_now,
            "contracts": self.contracts, "keys_dir": str(self.keys_dir),
            "config_file": str(self.config_file), "logs_dir": str(self.logs_dir),
            "demo": self.demo.to_json() if self.demo is not None else None,
            "api_urls": list(self.api_urls or (self.api_url,)),
            "proxies": {"urls": list(self.proxy_urls), "threshold": self.proxy_threshold,
                        "registry": self.proxy_registry} if self.proxy_urls else None,
        }


def write_initial_config(home: KizunaHome) -> bool:
    """Write ``config.toml`` for the local stack unless the home has one (True: written)."""
    if home.config_file.exists():
        return False
    keys = dev_private_keys(RELAYER_ACCOUNT + 1)
    text = (
        "# Kizuna settings, written by `kizuna up` on its first start. Every key here can be\n"
        "# overridden by a KIZUNA_<NAME> environment variable; `kizuna config` shows them all.\n"
        "# The two keys are anvil's public development accounts: for the local chain only.\n"
        f'session_secret = "{secrets.token_urlsafe(48)}"\n'
        f'anchorer_key = "0x{keys[ANCHORER_ACCOUNT].removeprefix("0x")}"\n'
        f'relayer_key = "0x{keys[RELAYER_ACCOUNT].removeprefix("0x")}"\n'
    )
    home.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.config_file.touch(mode=0o600)
    home.config_file.write_text(text, encoding="utf-8")
    return True


class LocalStack:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    def __init__(self, options: StackOptions, *, say: Callable[[str], None] = log.info,
                 step: Step = no_progress) -> None:
        self.options = options
        self.home = options.home
        self._say = say
        self._step = step
        self._lock = StackLock(self.home.lock_file)
        self._node: LocalNode | None = None
        self._ipfs: Any = None
        self._ctx: Any = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._instances: Any = None
        self._proxies: Any = None
        self._database_shown = ""
        self.settings: Settings | None = None
        self.info: StackInfo | None = None

    # -- start -------------------------------------------------------------------------------

    def start(self) -> StackInfo:
        """Start every part; on any failure stop what was started and re-raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackInfo:
        home = self.home.ensure()
        api_port = self._claim_ports(home)
        if write_initial_config(home):
            self._say(f"wrote {home.config_file} (session secret, local relayer/anchorer keys)")
        base = load_settings(home, config_file=self.options.config_file)
        rpc_url, anvil_pid = self._start_node(home, api_port)
        deployment, deployment_file, deployed_now = self._deployment(base, rpc_url)
        overrides = self._overrides(base, rpc_url, api_port, deployment_file,
                                    deployment.chain_id)
        settings = load_settings(home, config_file=self.options.config_file, **overrides)
        self.settings = settings

        from kizuna.services.context import open_context

        self._ctx = open_context(settings)
        self._database_shown = self._ctx.db.safe_url()  # no password in what is printed
        demo = None
        if self.options.demo:
            demo = create_demo(home=home, ctx=self._ctx, settings=settings, step=self._step)
        api_urls: tuple[str, ...] = ()
        if self.options.instances == 1:
            self._start_api(settings)
        else:
            api_urls = self._start_instances(settings, overrides, api_port)
        proxy_urls: tuple[str, ...] = ()
        if self.options.proxies:
            proxy_urls = self._start_proxies(overrides)
        api_url = f"http://127.0.0.1:{api_port}"
        store = (f"IPFS node {settings.ipfs_api}" if settings.store == "ipfs"
                 else f"embedded, {settings.store_path}")
        self.info = StackInfo(
            home=home.root, pid=_pid(), rpc_url=rpc_url, chain_id=deployment.chain_id,
            api_url=api_url, docs_url=f"{api_url}/docs", web_url=f"{api_url}/", store=store,
            database_url=self._database_shown, deployment_file=deployment_file,
            deployed_now=deployed_now, contracts=dict(deployment.addresses),
            keys_dir=home.keys_dir, config_file=home.config_file, logs_dir=home.logs_dir,
            demo=demo, api_urls=api_urls, proxy_urls=proxy_urls,
            proxy_threshold=self._proxies.threshold if self._proxies is not None else 1,
            proxy_registry=self._proxies.registry if self._proxies is not None else None)
        self._lock.update({"home": str(home.root), "state": "running", "rpc_url": rpc_url,
                           "api_url": api_url, "rpc_port": self.options.rpc_port,
                           "api_port": api_port, "anvil_pid": anvil_pid})
        return self.info

    def _claim_ports(self, home: KizunaHome) -> int:
        """Take the home's lock and check every port this stack needs is free (before
        anything is changed, so that a refused start changes nothing); the API's port."""
        left = read_lock(home.lock_file)  # non-empty only if a stack of this home was killed
        self._lock.acquire({"home": str(home.root), "state": "starting"})
        # A `kizuna up` of this home killed without clean-up (SIGKILL, a crash) may have left
        # its anvil running on the home's chain state: stop it (it dumps its state) so this
        # start can take its port. Anything else on the port is only named, never stopped.
        stopped = stop_leftover_anvil(left, home.anvil_state)
        if stopped is not None:
            self._say(f"stopped the anvil (pid {stopped}) a `kizuna up` of this home left "
                      "running when it was killed")
        leftovers = {int(left["anvil_pid"]): "the anvil of a `kizuna up` of this home that did "
                     "not stop cleanly"} if isinstance(left.get("anvil_pid"), int) else {}
        # Only the port is read from this probe; the settings the stack runs with are loaded
        # (and checked) after.
        probe = load_settings(home, config_file=self.options.config_file,
                              environment="development")
        api_port = self.options.api_port if self.options.api_port is not None \
            else probe.api_port
        check_ports_free([
            (self.options.rpc_port, "Ethereum node", "choose another with --rpc-port"),
            *[(api_port + i, "API" if self.options.instances == 1 else f"API instance {i}",
               "choose another with --port") for i in range(self.options.instances)],
            *[(api_port + PROXY_PORT_OFFSET + i, f"proxy node {i}", "choose another --port")
              for i in range(self.options.proxies)],
        ], known=leftovers)
        return api_port

    def _start_node(self, home: KizunaHome, api_port: int) -> tuple[str, int | None]:
        """Start anvil on the home's chain state: its RPC URL and pid."""
        self._lock.update({"home": str(home.root), "state": "starting",
                           "rpc_port": self.options.rpc_port, "api_port": api_port})
        self._say(f"starting anvil on 127.0.0.1:{self.options.rpc_port} "
                  f"(state: {home.anvil_state})")
        # Kept before start(): a Ctrl-C in the middle of it must still stop the process.
        # die_with_parent: if this process is killed, the kernel stops anvil too.
        self._node = LocalNode(port=self.options.rpc_port, state_path=home.anvil_state,
                               log_path=home.logs_dir / "anvil.log", die_with_parent=True)
        self._node.start()
        anvil_pid = listener_pid(self.options.rpc_port)
        # Written at once, not only when all is up: a kill during the rest of the start must
        # leave the next start the pid to stop.
        self._lock.update({"home": str(home.root), "state": "starting",
                           "rpc_port": self.options.rpc_port, "api_port": api_port,
                           "anvil_pid": anvil_pid})
        return self._node.rpc_url, anvil_pid

    def _overrides(self, base: Settings, rpc_url: str, api_port: int, deployment_file: Path,
                   chain_id: int) -> dict[str, Any]:
        """The settings this stack runs with beyond the home's own: its chain, its address,
        and the IPFS node, database and proxy nodes it was asked for (started here)."""
        overrides: dict[str, Any] = {"rpc_url": rpc_url, "api_host": "127.0.0.1",
                                     "api_port": api_port, "deployment_file": deployment_file,
                                     "chain_id": chain_id}
        if "siwe_domain" not in base.model_fields_set:
            overrides["siwe_domain"] = f"127.0.0.1:{api_port}"
        if "siwe_uri" not in base.model_fields_set:
            overrides["siwe_uri"] = f"http://127.0.0.1:{api_port}"
        if "wallet_rpc_url" not in base.model_fields_set:
            overrides["wallet_rpc_url"] = rpc_url  # what the web page offers MetaMask
        if "relayer_gas_per_day" not in base.model_fields_set:
            # The local chain's gas is anvil's free development ether, and importing a whole
            # history relays more than a public chain's daily budget would allow.
            overrides["relayer_gas_per_day"] = 0
        if self.options.ipfs:
            from kizuna.storage.localipfs import LocalIpfsNode

            self._say(f"starting a local IPFS node (repository: {self.home.ipfs_repo})")
            self._ipfs = LocalIpfsNode(repo_path=self.home.ipfs_repo,
                                       log_path=self.home.logs_dir / "ipfs.log")
            self._ipfs.start()
            overrides.update(store="ipfs", ipfs_api=self._ipfs.api_url)
        if self.options.database_url is not None:
            overrides["database_url"] = self.options.database_url
        if self.options.proxies:
            # Listed before the API starts: the API names the registry to the web page and
            # lets the page's CSP reach the nodes listed there (docs/proxies.md).
            overrides["proxy_registry"] = self._list_proxies(
                overrides, api_port + PROXY_PORT_OFFSET, page_origin=f"http://127.0.0.1:{api_port}")
        return overrides

    def _deployment(self, base: Settings, rpc_url: str) -> tuple[Deployment, Path, bool]:
        """The home's deployment: verified if it exists, else made now (and saved)."""
        w3 = web3_for(rpc_url)
        chain_id = int(w3.eth.chain_id)
        path = (base.deployment_file or self.home.deployment_file(chain_id)).expanduser()
        if path.is_file():
            deployment = load_deployment_file(path)
            try:
                verify_deployment(w3, deployment)
            except WrongChain as exc:
                raise ChainReset(f"{path} is for chain {exc.expected}, the local node is chain "
                                 f"{exc.actual}: move the file away to deploy afresh") from None
            except DeploymentError as exc:
                raise ChainReset(
                    f"the local chain has no Kizuna contracts where {path} says ({exc}): its "
                    f"state ({self.home.anvil_state}) was reset or lost. Move {path} away to "
                    "deploy afresh (what was registered on the old chain is gone)") from None
            deployment.check_abi()
            self._say(f"contracts verified at the addresses in {path}")
            return deployment, path, False
        keys = dev_private_keys(RELAYER_ACCOUNT + 1)
        anchorer = (Account.from_key(base.anchorer_key.get_secret_value()).address
                    if base.anchorer_key is not None
                    else Account.from_key(keys[ANCHORER_ACCOUNT]).address)
        self._say("deploying the contracts (first start)")
        deployment = deploy(w3, Account.from_key(keys[0]),
                            registrar=Account.from_key(keys[REGISTRAR_ACCOUNT]).address,
                            anchorer=anchorer, directory=None)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        written = deployment.save(path.parent)
        if written != path:
            written.replace(path)
        return deployment, path, True

    def _start_api(self, settings: Settings) -> None:
        import uvicorn  # only the one-instance stack serves the API itself

        from kizuna.api.app import create_app

        app = create_app(settings, ctx=self._ctx)
        config = uvicorn.Config(app, host="127.0.0.1", port=settings.api_port, loop="auto",
                                http="auto", log_level="warning", access_log=False,
                                server_header=False, timeout_graceful_shutdown=10,
                                limit_concurrency=1024)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="kizuna-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + API_START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive():
                raise NodeUnreachable(f"the API did not start on 127.0.0.1:{settings.api_port} "
                                      "(see the messages above)")
            if time.monotonic() > deadline:
                raise NodeUnreachable(f"the API did not start within {API_START_TIMEOUT_S}s")
            time.sleep(0.05)

    def _start_instances(self, settings: Settings, overrides: dict[str, Any],
                         first_port: int) -> tuple[str, ...]:
        """``kizuna serve`` processes on one database; this process keeps none of it open
        (the schema and the demo were made above, before any instance starts)."""
        from kizuna.services.context import close_context
        from kizuna.stack.instances import ApiInstances

        ctx, self._ctx = self._ctx, None
        close_context(ctx)
        shared = {**overrides, "database_url": settings.database_url}
        self._say(f"starting {self.options.instances} API instances on 127.0.0.1:"
                  f"{first_port}-{first_port + self.options.instances - 1} (database: "
                  f"{self._database_shown})")
        self._instances = ApiInstances(self.home, count=self.options.instances,
                                       first_port=first_port, overrides=shared,
                                       config_file=self.options.config_file)
        return tuple(self._instances.start())

    def _list_proxies(self, overrides: dict[str, Any], first_port: int, *,
                      page_origin: str) -> str:
        """The threshold proxy nodes (docs/proxies.md): their keys, and their listing in the
        home's ProxyRegistry (deployed on the first start); the registry's address. The nodes
        answer CORS for ``page_origin`` (the web page reads through them)."""
        from kizuna.stack.proxies import ProxyNodes, default_threshold

        count = self.options.proxies
        threshold = self.options.threshold or default_threshold(count)
        self._proxies = ProxyNodes(self.home, count=count, threshold=threshold,
                                   first_port=first_port, overrides=overrides,
                                   config_file=self.options.config_file,
                                   allow_origins=(page_origin,))
        keys = dev_private_keys(RELAYER_ACCOUNT + 1)
        return str(self._proxies.register(str(overrides["rpc_url"]),
                                          Path(overrides["deployment_file"]),
                                          keys[REGISTRAR_ACCOUNT]))

    def _start_proxies(self, overrides: dict[str, Any]) -> tuple[str, ...]:
        """Start the nodes :meth:`_list_proxies` listed; their URLs."""
        proxies = self._proxies
        first_port = proxies.nodes[0].port
        self._say(f"starting {len(proxies.nodes)} proxy nodes ({proxies.threshold}-of-"
                  f"{len(proxies.nodes)}) on 127.0.0.1:{first_port}-"
                  f"{first_port + len(proxies.nodes) - 1}, each with its own database")
        urls = tuple(proxies.start())
        keys = dev_private_keys(RELAYER_ACCOUNT + 1)
        proxies.allow_anchoring(str(overrides["rpc_url"]), Path(overrides["deployment_file"]),
                                keys[0])
        return urls

    # -- run and stop ------------------------------------------------------------------------

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set or a part of the stack dies (``KizunaError`` then)."""
        while not stop.wait(0.5):
            # Ctrl-C in a terminal reaches anvil too (same process group): give our own
            # handler a moment to set ``stop`` before calling anvil's exit unexpected.
            if self._dead_part() is not None and stop.wait(1.0):
                return
            if self._node is not None and not self._node.running:
                raise NodeUnreachable("anvil stopped unexpectedly (see "
                                      f"{self.home.logs_dir / 'anvil.log'})")
            if self._thread is not None and not self._thread.is_alive():
                raise NodeUnreachable("the API stopped unexpectedly")
            if self._instances is not None:
                # One instance lost is what the cluster is for: the others keep serving (and
                # one of them takes over the follower and the anchorer); all lost ends the stack.
                for dead in self._instances.newly_dead():
                    self._say(f"API instance {dead.number} ({dead.url}) stopped unexpectedly "
                              f"(exit {dead.exit_code}; see {dead.log_path}); the others keep "
                              "serving")
                if not any(i.running for i in self._instances.instances):
                    raise NodeUnreachable("every API instance stopped (see "
                                          f"{self.home.logs_dir}/api-*.log)")
            if self._ipfs is not None and not self._ipfs.running:
                raise NodeUnreachable("the IPFS node stopped unexpectedly (see "
                                      f"{self.home.logs_dir / 'ipfs.log'})")

    def _dead_part(self) -> str | None:
        if self._node is not None and not self._node.running:
            return "anvil"
        if self._thread is not None and not self._thread.is_alive():
            return "API"
        if self._ipfs is not None and not self._ipfs.running:
            return "IPFS"
        return None

    def stop(self) -> None:
        """Stop the API, close the context, stop IPFS and anvil (its state is dumped), unlock.
        Safe to call more than once and after a failed start."""
        proxies, self._proxies = self._proxies, None
        if proxies is not None:
            proxies.stop()
        instances, self._instances = self._instances, None
        if instances is not None:
            instances.stop()
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=20)
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            from kizuna.services.context import close_context

            try:
                close_context(ctx)
            except KizunaError as exc:
                log.warning("closing the service context: %s", exc)
        ipfs, self._ipfs = self._ipfs, None
        if ipfs is not None:
            ipfs.stop()
        node, self._node = self._node, None
        if node is not None:
            node.stop()
        self._lock.release()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pid() -> int:
    import os

    return os.getpid()


__all__ = [
    "ChainReset",
    "LocalStack",
    "StackInfo",
    "StackOptions",
    "write_initial_config",
]
