"""The import's process pool (kizuna.client.importer.start_pool): workers forked from the fork
server, which imported what they run once (no fresh interpreter per worker), seal as before,
and exit when the importing process is killed (none left waiting for work)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from kizuna.client.importer import POOL_PRELOAD, start_pool
from kizuna.client.sealing import SealTask, seal_chunk
from kizuna.crypto import pre
from kizuna.storage.envelope import decrypt_bytes


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_come_from_the_fork_server_and_seal_each_record_apart() -> None:
    pool = start_pool(2)
    try:
        assert pool._mp_context.get_start_method() == "forkserver"  # type: ignore[attr-defined]
        assert "kizuna.client.sealing" in POOL_PRELOAD
        secret = pre.UmbralSecretKey.random()
        owner = secret.public_key.to_bytes()
        tasks = [SealTask(position=i, record_id=bytes([i]) * 32, owner_key=owner,
                          content=b'{"same":"content"}', content_type="application/fhir+json")
                 for i in range(4)]
        sealed = [s for part in pool.map(seal_chunk, [tasks[:2], tasks[2:]]) for s in part]
        workers = list(pool._processes)  # type: ignore[attr-defined]
        # Each envelope has its own data key and nonces, drawn in the worker: forked workers
        # share no random state (the same content four times, four different envelopes).
        assert len({s.envelope for s in sealed}) == 4
        for task, out in zip(tasks, sealed, strict=True):
            assert decrypt_bytes(out.envelope, owner_sk=secret) == task.content
        # Not this process's children: the fork server's, so none is a fresh interpreter.
        for pid in workers:
            with open(f"/proc/{pid}/stat") as stat:
                assert int(stat.read().rsplit(")", 1)[1].split()[1]) != os.getpid()
    finally:
        pool.shutdown(wait=True)


def test_the_workers_exit_when_the_importing_process_is_killed() -> None:
    script = textwrap.dedent("""
        from kizuna.client.importer import start_pool
        from kizuna.client.sealing import seal_chunk
        if __name__ == "__main__":
            pool = start_pool(2)
            list(pool.map(seal_chunk, [[], [], []]))
            print(" ".join(str(p) for p in pool._processes), flush=True)
            import time
            time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        workers = [int(p) for p in child.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "workers outlived the killed import"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
