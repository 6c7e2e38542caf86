"""A revocation race over HTTP: providers read in a loop (several clients, in parallel) while
the patient revokes. No read may be served on chain state at or after the revoking block, and
every read sent after the revoke was answered is refused. Checked against the receipts (their
head block and serving time) and the revoking block's number and timestamp."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from apienv import ApiServer
from participants import HttpProvider, People

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""The shared deployment and API (tests/api/apienv.py, shares_stack): the test signs in its own
wallets and counts its own patient's reads."""

LAB = "Observation:laboratory"
READERS = 4


def test_no_read_is_served_after_the_revoking_block(people: People,
                                                    api_server: ApiServer) -> None:
    patient, provider = people.patient, people.provider
    sealed = patient.add(b"lab results", label=LAB, content_type="text/plain")
    assert patient.grant(provider.address, provider.keys.public_key, [LAB]).status_code == 200

    stop = threading.Event()
    revoked_at: list[float] = []
    outcomes: list[tuple[float, float, int, dict[str, object]]] = []
    lock = threading.Lock()

    def reader() -> None:
        with httpx.Client(base_url=api_server.url, timeout=30) as http:
            me = HttpProvider(signer=provider.signer, chain=provider.chain, http=http,
                              token=provider.token, _keys=provider.keys)
            while not stop.is_set():
                sent = time.monotonic()
                answer = me.request_read(patient.address, sealed.record_id)
                with lock:
                    outcomes.append((sent, time.monotonic(), answer.status_code,
                                     answer.json()))

    threads = [threading.Thread(target=reader) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    answer = patient.revoke(provider.address, LAB)
    revoked_at.append(time.monotonic())
    assert answer.status_code == 200, answer.text
    revoke_block = int(answer.json()["block_number"])
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()

    served = [o for o in outcomes if o[2] == 200]
    refused = [o for o in outcomes if o[2] == 403]
    assert served and refused, (len(served), len(refused))
    assert len(served) + len(refused) == len(outcomes), {o[2] for o in outcomes}
    # every served read was decided on a head before the revoking block
    assert max(int(o[3]["head_block"]) for o in served) < revoke_block  # type: ignore[call-overload]
    # every read sent after the revoke was confirmed is refused
    after = [o for o in outcomes if o[0] > revoked_at[0]]
    assert after and all(o[2] == 403 for o in after)
    # the receipts agree: none after the revoking block, none served after its timestamp
    block_time = provider.chain.w3.eth.get_block(revoke_block)["timestamp"]
    reads = patient.get("/patient/reads").json()
    assert len(reads) == len(served)
    assert all(r["head_block"] < revoke_block for r in reads)
    assert all(r["served_at"] <= block_time + 1 for r in reads)
