"""System routes: ``/health`` (the chain and the store answer) and ``/version``, public (load
balancers and clients probe them); ``/status`` (this process's pid and memory) only for a
signed-in session of any role — process figures are no business of the anonymous internet."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter

from kizuna import __version__
from kizuna.api.deps import CurrentSession, State
from kizuna.api.errors import error_responses
from kizuna.api.schemas import Health, Status, Version
from kizuna.diagnostics import peak_rss_mib

router = APIRouter(tags=["system"])

EMPTY_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@router.get("/health", response_model=Health, responses=error_responses(503))
def health(state: State) -> Health:
    """200 when the Ethereum node and the content store answer; 503 naming which does not."""
    head = state.ctx.chain.head()
    # the CID of empty content: a cheap round trip, StoreUnavailable when the store is down
    state.ctx.store.has(EMPTY_CID)
    return Health(status="ok", chain_id=state.ctx.chain.chain_id, head_block=head.number,
                  store=state.settings.store)


@router.get("/version", response_model=Version)
def version(state: State) -> Version:
    """The service version, the chain id and the contract addresses it serves (with the
    ProxyRegistry of its threshold proxy nodes, when it has one), and the RPC URL
    the web page offers wallets for that chain (when configured), and the address that anchors
    this service's receipts (the auditor page counts only its batches as the service's)."""
    chain = state.ctx.chain
    contracts: dict[str, str] = dict(chain.deployment.addresses)
    if state.settings.proxy_registry is not None:
        # Deployed on its own (docs/proxies.md), named here so the web page can read the
        # threshold proxy nodes from it (through the wallet, not on this service's word).
        contracts["ProxyRegistry"] = state.settings.proxy_registry
    return Version(version=__version__, chain_id=chain.chain_id, contracts=contracts,
                   wallet_rpc_url=state.settings.wallet_rpc_url,
                   anchorer=(state.anchorer.signer.address if state.anchorer is not None
                             else None))


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@router.get("/status", response_model=Status, responses=error_responses(401))
def process_status(session: CurrentSession) -> Status:
    """This service process: pid, current and peak resident memory (signed in, any role)."""
    rss = _rss_mib()
    # The kernel updates the peak (ru_maxrss) lazily: it may trail the current figure a little.
    return Status(pid=os.getpid(), peak_rss_mib=max(peak_rss_mib(), rss), rss_mib=rss)
