"""``LeanRpc``: JSON-RPC over its own HTTP/1.1 framing — against anvil, and against a small socket
server here that answers in each framing a node may use (Content-Length, chunked, closing the
connection), drops kept-alive connections, and answers wrongly."""

from __future__ import annotations

import gc
import json
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from kizuna.chain.localnode import LocalNode
from kizuna.chain.rpc import LeanRpc
from kizuna.errors import ChainError, NodeUnreachable

Answer = Callable[[dict[str, object] | list[object], int], bytes]
"""(request JSON, how many requests this connection served before) → raw HTTP answer bytes;
an empty answer closes the connection without answering."""


def _result(request: dict[str, object] | list[object], value: object) -> bytes:
    assert isinstance(request, dict)
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": value}).encode()


def _http(body: bytes, *, headers: str = "", status: str = "200 OK") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n").encode() + body


def _read_request(conn: socket.socket, buffer: bytearray) -> object | None:
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += conn.recv(65536)
    buffer[:] = rest[length:]
    return json.loads(rest[:length])


@contextmanager
def node(answer: Answer) -> Iterator[tuple[str, list[int]]]:
    """A one-thread-per-connection HTTP server on 127.0.0.1; yields its URL and a list that
    counts the connections it accepted."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[int] = []
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        buffer = bytearray()
        served = 0
        with conn:
            while not stop.is_set():
                request = _read_request(conn, buffer)
                if request is None:
                    return
                raw = answer(request, served)  # type: ignore[arg-type]
                served += 1
                if not raw:
                    return
                conn.sendall(raw)
                if b"Connection: close" in raw.split(b"\r\n\r\n")[0]:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/rpc", accepted
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_calls_and_batches_against_anvil(anvil: LocalNode) -> None:
    rpc = LeanRpc(anvil.rpc_url)
    number = int(rpc.call("eth_blockNumber", []), 16)
    block = rpc.call("eth_getBlockByNumber", [hex(number), False])
    assert int(block["number"], 16) == number
    answers = rpc.batch([("eth_chainId", []), ("eth_getBlockByNumber", ["0x0", False]),
                         ("no_such_method", [])])
    assert int(answers[0]["result"], 16) == 31337
    assert answers[1]["result"]["number"] == "0x0"
    assert "error" in answers[2]
    with pytest.raises(ChainError, match="no_such_method failed"):
        rpc.call("no_such_method", [])
    rpc.close()


def test_every_framing_a_node_may_answer_in() -> None:
    def answer(request: dict[str, object] | list[object], served: int) -> bytes:
        body = _result(request, "0x" + "ab" * 5000)
        if served == 0:  # Content-Length
            return _http(body)
        if served == 1:  # chunked, in uneven pieces, with a chunk extension and a trailer
            pieces = [body[:7], body[7:4000], body[4000:]]
            chunks = b"".join(f"{len(p):x};x=1\r\n".encode() + p + b"\r\n" for p in pieces)
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
                    + b"0\r\nX-Trailer: yes\r\n\r\n")
        # framed by closing the connection (no length at all)
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body

    with node(answer) as (url, accepted):
        rpc = LeanRpc(url)
        for _ in range(3):
            assert rpc.call("eth_blockNumber", []) == "0x" + "ab" * 5000
        assert len(accepted) == 1  # all three on one kept-alive connection
        assert rpc.call("eth_blockNumber", []) == "0x" + "ab" * 5000  # a new one after close
        assert len(accepted) == 2


def test_a_kept_alive_connection_dropped_by_the_node_is_reopened_once() -> None:
    def answer(request: dict[str, object] | list[object], served: int) -> bytes:
        return _http(_result(request, served)) if served == 0 else b""  # then hang up

    with node(answer) as (url, accepted):
        rpc = LeanRpc(url)
        assert rpc.call("eth_blockNumber", []) == 0
        assert rpc.call("eth_blockNumber", []) == 0  # dropped, re-opened, answered again
        assert len(accepted) == 2


def test_close_closes_every_threads_connection_and_ended_threads_leave_none_open() -> None:
    def answer(request: dict[str, object] | list[object], served: int) -> bytes:
        return _http(_result(request, served))

    with node(answer) as (url, accepted):
        rpc = LeanRpc(url)
        kept: list[socket.socket] = []
        release = threading.Event()

        def use(hold: bool = False) -> None:
            rpc.call("eth_blockNumber", [])
            kept.append(rpc._local.conn.sock)
            if hold:
                release.wait(10)

        alive = threading.Thread(target=use, args=(True,))
        alive.start()
        use()
        while len(kept) < 2:
            time.sleep(0.01)
        assert len(accepted) == 2 and all(s.fileno() >= 0 for s in kept)
        rpc.close()  # from this thread: the live worker's connection too
        assert [s.fileno() for s in kept] == [-1, -1]
        release.set()
        alive.join()
        assert rpc.call("eth_blockNumber", []) == 0  # a new connection
        assert len(accepted) == 3

        # A thread that ends without close(): its connection is closed with it, quietly.
        # Garbage left by earlier tests in this process is collected first: its warnings (an
        # unclosed socket of another test) are not this connection's.
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ended = threading.Thread(target=use)
            ended.start()
            ended.join()
            del ended
            gc.collect()
        assert kept[-1].fileno() == -1
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_node_that_never_answers_a_fresh_connection_is_unreachable() -> None:
    with node(lambda request, served: b"") as (url, accepted):
        with pytest.raises(NodeUnreachable, match="does not answer"):
            LeanRpc(url).call("eth_blockNumber", [])
        assert len(accepted) == 1  # a fresh connection failing is not retried


def test_wrong_answers_are_kizuna_errors() -> None:
    answers = {
        "status": _http(b"busy", status="503 Service Unavailable"),
        "notjson": _http(b"<html>hello</html>"),
        "nothttp": b"SSH-2.0-OpenSSH\r\n\r\n",
        "rpcerror": _http(json.dumps({"jsonrpc": "2.0", "id": 1, "error": {
            "code": -32000, "message": "header not found"}}).encode()),
        "badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    }
    chosen: list[str] = []

    with node(lambda request, served: answers[chosen[-1]]) as (url, _):
        rpc = LeanRpc(url, timeout=3)
        cases: list[tuple[str, type[Exception], str]] = [
            ("status", NodeUnreachable, "HTTP 503"),
            ("notjson", ChainError, "not JSON"),
            ("nothttp", ChainError, "not HTTP"),
            ("rpcerror", ChainError, "header not found"),
            ("badchunk", ChainError, "malformed chunked"),
        ]
        for name, error, message in cases:
            chosen.append(name)
            with pytest.raises(error, match=message):
                rpc.call("eth_blockNumber", [])


def test_batch_answers_come_back_in_request_order_whatever_the_node_order() -> None:
    def answer(request: dict[str, object] | list[object], served: int) -> bytes:
        assert isinstance(request, list)
        items = [{"jsonrpc": "2.0", "id": r["id"], "result": r["params"][0]}  # type: ignore[index]
                 for r in reversed(request)]
        return _http(json.dumps(items).encode())

    with node(answer) as (url, _):
        answers = LeanRpc(url).batch([("echo", [i]) for i in range(5)])
        assert [a["result"] for a in answers] == [0, 1, 2, 3, 4]


def test_unreachable_and_unusable_urls() -> None:
    from kizuna.chain.localnode import free_port

    rpc = LeanRpc(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(NodeUnreachable, match="does not answer"):
        rpc.call("eth_blockNumber", [])
    assert LeanRpc.usable("https://node.example/v3/key")
    assert not LeanRpc.usable("http://user:pw@127.0.0.1:8545")
    assert not LeanRpc.usable("ws://127.0.0.1:8545")
