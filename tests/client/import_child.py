"""An import in a process of its own (``python import_child.py``), for the tests that kill one
mid-way: a ``PatientClient`` over the real API (``ApiService``), the pipeline of
``kizuna.client.importer``, a line ``staged N`` on stdout after each staging answer, and the
result as one JSON line at the end.

    python import_child.py API_URL RPC_URL DEPLOYMENT_FILE JOURNAL_DIR BUNDLE [STAGE_SIZE]

The patient's private key comes in ``KIZUNA_TEST_KEY`` (never on the command line)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kizuna.chain.connection import connect
from kizuna.chain.signers import LocalKeySigner
from kizuna.client.api_service import ApiService
from kizuna.client.http import ApiClient
from kizuna.client.importer import STAGE_SIZE, Importer, bundle_source
from kizuna.client.patient import PatientClient


def main() -> int:
    api_url, rpc_url, deployment_file, journal_dir, bundle = sys.argv[1:6]
    stage_size = int(sys.argv[6]) if len(sys.argv) > 6 else STAGE_SIZE
    signer = LocalKeySigner(os.environ["KIZUNA_TEST_KEY"])
    chain = connect(rpc_url, Path(deployment_file))
    api = ApiClient(api_url, timeout=120)
    api.login(signer)
    service = ApiService(api, chain)
    client = PatientClient(signer=signer, service=service, chain=chain)
    raw = Path(bundle).read_bytes()
    source = bundle_source(json.loads(raw), raw, name=Path(bundle).name)

    def staged(count: int) -> None:
        print(f"staged {count}", flush=True)

    result = Importer(client, journal_root=Path(journal_dir), stage_size=stage_size,
                      on_stage=staged).run([source])
    print(json.dumps(result.as_dict()), flush=True)
    service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
