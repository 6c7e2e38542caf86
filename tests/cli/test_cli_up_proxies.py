"""``kizuna up --proxies 3 --threshold 2``: three ``kizuna proxy serve`` processes (three
databases, three keys under the home), each answering /health, listed in a ProxyRegistry the
stack deployed on its chain; ``kizuna down`` (SIGTERM) stops them with the rest."""

from __future__ import annotations

from pathlib import Path

import httpx
from cli_harness import UpProcess

from kizuna.chain.agents.proxies import ProxyRegistryAgent
from kizuna.chain.connection import connect
from kizuna.chain.localnode import free_port, free_port_block, port_in_use
from kizuna.types import checksum_address


def test_up_runs_three_proxy_nodes_listed_on_chain(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_port = free_port_block([0, 801, 802, 803])
    up = UpProcess(home, "--port", str(api_port), "--rpc-port", str(free_port()),
                   "--proxies", "3", "--threshold", "2")
    try:
        info = up.ready()
        proxies = info["proxies"]
        assert proxies["threshold"] == 2
        assert proxies["urls"] == [f"http://127.0.0.1:{api_port + 801 + i}" for i in range(3)]
        nodes = [httpx.get(url + "/health", timeout=10).json()["node"] for url in proxies["urls"]]
        assert len(set(nodes)) == 3  # three keys
        assert all((home / "proxies" / str(i) / "node.sqlite3").is_file() for i in range(3))
        chain = connect(info["rpc_url"], Path(info["deployment_file"]))
        listed = ProxyRegistryAgent(chain, checksum_address(proxies["registry"])).nodes()
        assert [(n.address, n.endpoint) for n in listed] == list(zip(nodes, proxies["urls"],
                                                                     strict=True))
    finally:
        up.stop()
    assert not any(port_in_use(api_port + 801 + i) for i in range(3))
