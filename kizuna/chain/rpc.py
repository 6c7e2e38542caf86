"""``LeanRpc``: a small JSON-RPC client for the requests Kizuna sends most often.

Every provider read asks the node for its latest block and reads five views in one batch; a
catch-up of the event index asks for thousands of logs. web3's HTTP provider spends ~1.4 ms of
CPU on each request (``requests``, adapters, middleware) and ``http.client`` still ~0.1 ms
(header parsing through ``email``). This client keeps one HTTP/1.1 connection per thread and
speaks just enough of the protocol: a ``POST`` with a ``Content-Length`` body, and an answer
framed by ``Content-Length`` or ``Transfer-Encoding: chunked`` (or, for an old server, by the
connection closing). TLS for ``https://`` URLs. URLs with credentials are not taken
(:meth:`LeanRpc.usable`): those nodes go through web3.

Errors are Kizuna's: a node that cannot be reached, closes the connection or answers other than
HTTP 200 is :class:`~kizuna.errors.NodeUnreachable`; an answer that is not JSON, or a JSON-RPC
error, is :class:`~kizuna.errors.ChainError`. A kept-alive connection the node dropped while idle
is re-opened and the request sent once more (JSON-RPC reads are safe to repeat; this client
sends no transactions).

:class:`ChainReader` is what a participant's read of its own record needs from the node, over
this client and without web3 (~0.3 s of CPU to import): the chain id and the deployment checked
on it by the same rule as :meth:`~kizuna.chain.connection.Chain.verify`
(:func:`~kizuna.chain.deploy.check_on_node`), and a contract's logs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kizuna.chain.artifacts import CONTRACT_NAMES, load_artifact
from kizuna.chain.deploy import Deployment, check_on_node, load_deployment_file
from kizuna.errors import ChainError, NodeUnreachable
from kizuna.tls import verifying_context
from kizuna.types import Address

MAX_HEADER_BYTES = 64 * 1024
"""An answer whose status line and headers are longer than this is refused."""


class _Closed(OSError):
    """The node closed the connection before a whole answer arrived."""


class _Connection:
    """One HTTP/1.1 connection: send a request, read one answer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.reusable = True

    def _fill(self) -> None:
        data = self.sock.recv(262_144)
        if not data:
            raise _Closed("the node closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 2]
                return line
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise ChainError("the node's answer has an over-long header line")
            self._fill()

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def exchange(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        """Send one request; the answer's status and body."""
        self.sock.sendall(head + body)
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ChainError(f"the node answered something not HTTP: {status_line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = False
        size = 0
        while True:
            line = self._line()
            if not line:
                break
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise ChainError("the node's answer has too many headers")
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection" and b"close" in value.lower():
                self.reusable = False
        if chunked:
            data = self._chunked()
        elif length is not None:
            data = self._exactly(length)
        else:  # framed by the connection closing (HTTP/1.0 style)
            self.reusable = False
            try:
                while True:
                    self._fill()
            except _Closed:
                pass
            data, self.buffer = bytes(self.buffer), bytearray()
        return status, data

    def _chunked(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ChainError("the node sent a malformed chunked answer") from None
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return b"".join(pieces)
            pieces.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise ChainError("the node sent a malformed chunked answer")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __del__(self) -> None:
        # The connection of a thread that ended goes with the thread's locals: closed here,
        # not left to the socket's finalizer (which warns of an unclosed socket).
        self.close()


class LeanRpc:
    """JSON-RPC over a kept-alive HTTP/1.1 connection per thread (see the module docstring)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parsed = urlsplit(url)
        self.url = url
        self.https = parsed.scheme == "https"
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or (443 if self.https else 80)
        path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        default_port = self.port == (443 if self.https else 80)
        self._request_line = (f"POST {path} HTTP/1.1\r\nHost: {host}"
                              f"{'' if default_port else f':{self.port}'}\r\n"
                              "Content-Type: application/json\r\nAccept: application/json\r\n"
                              "Content-Length: ").encode("ascii")
        self.timeout = timeout
        self._local = threading.local()
        self._open_conns: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._tls = verifying_context() if self.https else None

    @staticmethod
    def usable(url: str) -> bool:
        """True for plain ``http(s)://`` URLs without credentials."""
        parsed = urlsplit(url)
        return parsed.scheme in ("http", "https") and not parsed.username

    def _open(self) -> _Connection:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        conn = _Connection(sock)
        with self._conns_lock:
            self._open_conns.add(conn)
        return conn

    def _post(self, body: bytes) -> Any:
        head = self._request_line + str(len(body)).encode("ascii") + b"\r\n\r\n"
        for attempt in (1, 2):
            conn: _Connection | None = getattr(self._local, "conn", None)
            fresh = conn is None
            try:
                if conn is None:
                    conn = self._open()
                    self._local.conn = conn
                status, data = conn.exchange(head, body)
            except (OSError, ValueError) as error:
                if conn is not None:
                    conn.close()
                self._local.conn = None
                # A kept-alive connection may have been closed by the node while idle: one
                # more try on a fresh one. A fresh connection that fails is the answer.
                if attempt == 2 or fresh:
                    raise NodeUnreachable(f"the node at {self.url} does not answer: "
                                          f"{error}") from None
                continue
            except ChainError:
                if conn is not None:
                    conn.close()
                self._local.conn = None
                raise
            if not conn.reusable:
                conn.close()
                self._local.conn = None
            if status != 200:
                raise NodeUnreachable(f"the node at {self.url} answered HTTP {status}")
            try:
                return json.loads(data)
            except ValueError:
                raise ChainError(f"the node at {self.url} answered something not JSON") from None
        raise AssertionError("unreachable")

    def call(self, method: str, params: list[Any]) -> Any:
        """One request; its ``result`` (``ChainError`` for a JSON-RPC error)."""
        answer = self._post(json.dumps({"jsonrpc": "2.0", "id": next(self._ids),
                                        "method": method, "params": params}).encode())
        if not isinstance(answer, dict) or "error" in answer:
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise ChainError(f"{method} failed: {error}")
        return answer.get("result")

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Several requests in one JSON-RPC batch; each answer (``result`` or ``error``) in the
        order of ``calls``."""
        first = next(self._ids)
        for _ in range(len(calls) - 1):
            next(self._ids)
        payload = [{"jsonrpc": "2.0", "id": first + i, "method": m, "params": p}
                   for i, (m, p) in enumerate(calls)]
        answer = self._post(json.dumps(payload).encode())
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise ChainError(f"batched request failed: {answer}")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        return [by_id.get(first + i, {"error": "missing answer"}) for i in range(len(calls))]

    def close(self) -> None:
        """Close every thread's connection. A thread that calls again opens a new one (its
        closed connection fails, which is retried once on a fresh one)."""
        with self._conns_lock:
            conns = list(self._open_conns)
            self._open_conns.clear()
        for conn in conns:
            conn.close()
        self._local.conn = None


@dataclass(frozen=True)
class RawLog:
    """One log of a contract, as the node gave it: its topics and data."""

    topics: tuple[bytes, ...]
    data: bytes
    block_number: int


class ChainReader:
    """A participant's read-only view of a Kizuna deployment over :class:`LeanRpc`.

    Build it with :meth:`connect` (which checks the deployment on the node, as
    :func:`~kizuna.chain.connection.connect` does). It sends nothing and signs nothing."""

    def __init__(self, rpc: LeanRpc, deployment: Deployment) -> None:
        self.rpc = rpc
        self.deployment = deployment
        self.chain_id = deployment.chain_id

    @classmethod
    def connect(cls, url: str, deployment_file: str | os.PathLike[str], *,
                timeout: float = 10.0) -> ChainReader:
        """Connect to the node at ``url`` (``LeanRpc.usable``) and check the deployment of
        ``deployment_file`` on it: ``WrongChain`` / ``DeploymentError`` as ``connect``."""
        deployment = load_deployment_file(deployment_file)
        rpc = LeanRpc(url, timeout=timeout)
        try:
            chain_id = _quantity(rpc.call("eth_chainId", []), "eth_chainId")
        except NodeUnreachable as exc:
            rpc.close()
            raise NodeUnreachable(f"the Ethereum node at {url} does not answer: {exc}") from None
        names = list(CONTRACT_NAMES)
        answers = rpc.batch([("eth_getCode", [deployment.addresses[n], "latest"])
                             for n in names])
        codes: dict[str, bytes] = {}
        for name, answer in zip(names, answers, strict=True):
            if "error" in answer or not isinstance(answer.get("result"), str):
                rpc.close()
                raise ChainError(f"eth_getCode of {name} failed: {answer.get('error')}")
            codes[deployment.addresses[name]] = bytes.fromhex(answer["result"][2:])
        check_on_node(deployment, chain_id=chain_id,
                      abis={n: load_artifact(n).abi_list for n in names},
                      code_of=lambda address: codes[address])
        return cls(rpc, deployment)

    def logs(self, address: Address, topics: Sequence[bytes | Sequence[bytes] | None], *,
             from_block: int, to_block: int | str = "latest") -> list[RawLog]:
        """``eth_getLogs`` of ``address`` (each topic a value, a list of alternatives, or
        ``None`` for any), in chain order."""
        def topic(value: bytes | Sequence[bytes] | None) -> str | list[str] | None:
            if value is None:
                return None
            if isinstance(value, bytes | bytearray):
                return "0x" + bytes(value).hex()
            return ["0x" + bytes(v).hex() for v in value]

        query = {"address": address, "topics": [topic(t) for t in topics],
                 "fromBlock": hex(from_block),
                 "toBlock": to_block if isinstance(to_block, str) else hex(to_block)}
        result = self.rpc.call("eth_getLogs", [query])
        if not isinstance(result, list):
            raise ChainError(f"eth_getLogs answered {result!r}")
        return [RawLog(topics=tuple(bytes.fromhex(t[2:]) for t in log["topics"]),
                       data=bytes.fromhex(log["data"][2:]),
                       block_number=_quantity(log["blockNumber"], "blockNumber"))
                for log in result]

    def close(self) -> None:
        self.rpc.close()


def _quantity(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainError(f"the node's {what} is not a quantity: {value!r}")
    return int(value, 16)


__all__ = ["ChainReader", "LeanRpc", "RawLog"]
