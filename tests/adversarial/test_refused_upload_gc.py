"""Finding 6 (the disk side): a refused upload unpinned its envelope, but nothing ever deleted
the blocks (``EmbeddedStore.gc()`` was never called), so refused uploads filled the disk.

Now the service collects unpinned blocks every ``store_gc_interval_s`` (blocks younger than
``store_gc_grace_s`` are spared, so a concurrent upload of the same envelope is safe), pinned
records are never touched, and ``kizuna store gc`` does the same once and prints what it
freed."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import forked_cli
import httpx
import pytest
from apienv import ApiServer, ChainEnv
from participants import HttpPatient, hx

from kizuna.chain.signers import LocalKeySigner
from kizuna.storage.embedded import EmbeddedStore
from kizuna.storage.unixfs import compute_cid

LAB = "Observation:laboratory"


def _blocks(store: Path) -> set[str]:
    return {p.name for p in (store / "blocks").rglob("*") if p.is_file()}


@pytest.mark.anvil
def test_the_service_collects_a_refused_uploads_blocks_and_never_a_records(
        chain_env: ChainEnv, start_api: Callable[..., ApiServer]) -> None:
    server = start_api(store_gc_interval_s=0.5, store_gc_grace_s=1.0)
    store = Path(server.settings.store_path)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        patient = HttpPatient(signer=LocalKeySigner.generate(), chain=chain_env.chain,
                              http=http)
        patient.login()
        kept = patient.add(os.urandom(700 * 1024), label=LAB,
                           content_type="application/octet-stream")
        pinned = _blocks(store)
        assert len(pinned) > 1  # a DAG: several leaves and a root

        # The chain step refuses this one (its signature names another commitment) after the
        # store took every block: the envelope is unpinned, its blocks are left behind.
        refused = patient.seal(os.urandom(700 * 1024), label=LAB,
                               content_type="application/octet-stream")
        answer = patient.upload(refused, registration=patient.registration(
            refused, commitment=b"\x01" * 32))
        assert answer.status_code == 422, answer.text
        left = _blocks(store) - pinned
        assert compute_cid(refused.envelope).text() in left and len(left) > 1

        deadline = time.monotonic() + 30
        while _blocks(store) - pinned and time.monotonic() < deadline:
            time.sleep(0.25)
        assert _blocks(store) == pinned  # the refused upload's blocks are gone, all of them
        content = patient.get(f"/patient/records/{hx(kept.record_id)}/content")
        assert content.status_code == 200 and content.content == kept.envelope


def _kizuna(home: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}
    env.update(KIZUNA_HOME=str(home), KIZUNA_STORE_PATH=str(store),
               KIZUNA_ENVIRONMENT="development")
    code, out, err = forked_cli.run(list(args), env=env, timeout=120)
    return subprocess.CompletedProcess(["kizuna", *args], code, out, err)


def test_kizuna_store_gc_frees_unpinned_blocks_and_says_how_much(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    store = EmbeddedStore(store_path, fsync=False)
    keep = os.urandom(600 * 1024)
    drop = os.urandom(600 * 1024)
    kept = store.put(keep)
    pinned = _blocks(store_path)
    dropped = store.put(drop)
    store.unpin(dropped)

    # By default the grace period spares blocks this fresh (an upload may be re-pinning them).
    fresh = _kizuna(tmp_path / "home", store_path, "store", "gc", "--json")
    assert fresh.returncode == 0, fresh.stderr
    report = json.loads(fresh.stdout)
    assert report["blocks_removed"] == 0 and report["blocks_spared"] >= 3
    assert store.has(dropped)

    now = _kizuna(tmp_path / "home", store_path, "store", "gc", "--grace", "0", "--json")
    assert now.returncode == 0, now.stderr
    report = json.loads(now.stdout)
    assert report["collected"] is True
    assert report["blocks_removed"] >= 3 and report["bytes_freed"] > len(drop)
    assert not store.has(dropped)
    assert _blocks(store_path) == pinned
    assert b"".join(store.get(kept)) == keep

    again = _kizuna(tmp_path / "home", store_path, "store", "gc", "--grace", "0")
    assert again.returncode == 0, again.stderr
    assert "0 blocks, 0 bytes freed" in again.stdout

