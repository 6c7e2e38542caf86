"""The page's de-identification (web/src/research/deidentify.ts, run by Node) against
Python's (kizuna/research/deidentify.py) on whole Synthea lives: three seeds and ages (the
one born 90-99 years ago died at 68, and the age is at death; ages of 90 or more are in the
committed vectors), the lives tests/research/test_research_deidentify.py scans too. For each
resource, the page's copy as canonical JSON is byte for byte Python's (the record the study
would receive); and the direct-identifier scanner of tests/research/
test_research_deidentify.py, over the page's copy written as FHIR Bulk NDJSON, finds nothing
while it finds the identifiers in the raw input written the same way (it is not blind).
The committed corner cases are tests/vectors/deidentify.json (web/test/deidentify.test.ts);
the page's whole consent flow is tests/web/test_web_research_consent.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kizuna.crypto.pre import UmbralSecretKey
from kizuna.research.deidentify import Deidentifier, study_key
from kizuna.research.export import write_bulk_ndjson
from kizuna.storage.fhir.canonical import canonical_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "research"))
from test_research_deidentify import (  # the one scanner
    LIVES,
    contained,
    direct_identifiers,
    scan,
)

ROOT = Path(__file__).resolve().parents[2]
DEID_TS = ROOT / "web" / "src" / "research" / "deidentify.ts"
CANONICAL_TS = ROOT / "web" / "src" / "importer" / "canonical.ts"
JSON_TS = ROOT / "web" / "src" / "importer" / "json.ts"

pytestmark = pytest.mark.node

RUNNER = """
import { Deidentifier, studyKey } from %s;
import { canonicalJson } from %s;
import { loadJson } from %s;
let text = "";
for await (const chunk of process.stdin) text += chunk;
const input = JSON.parse(text);
const hex = (h) => Uint8Array.from(h.match(/../g).map((b) => parseInt(b, 16)));
const key = await studyKey(hex(input.secret), hex(input.study));
const resources = input.resources.map((r) => loadJson(r, 1000));
const types = new Map();
for (const r of resources) if (typeof r.id === "string") types.set(r.id, r.resourceType);
const deid = new Deidentifier(key, { types, asOf: input.as_of });
const started = performance.now();
const canonical = (c) => (c === null ? null : new TextDecoder().decode(canonicalJson(c)));
const out = resources.map((r) => canonical(deid.resource(r)));
process.stdout.write(JSON.stringify({ out, ms: performance.now() - started }));
"""


def page_copies(resources: list[str], secret: bytes, study: bytes,
                as_of: str) -> tuple[list[str | None], float]:
    node = shutil.which("node", path=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert node, "no node on PATH: `. scripts/bootstrap.sh` puts Node 24 there"
    script = RUNNER % (json.dumps(DEID_TS.as_uri()), json.dumps(CANONICAL_TS.as_uri()),
                       json.dumps(JSON_TS.as_uri()))
    done = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps({"resources": resources, "secret": secret.hex(), "study": study.hex(),
                          "as_of": as_of}),
        capture_output=True, text=True, cwd=ROOT / "web", timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    answer = json.loads(done.stdout)
    return answer["out"], answer["ms"]


@pytest.mark.parametrize(("seed", "ages"), LIVES)
def test_a_synthea_life_de_identified_as_python_does(
        synthea_patients: Callable[..., Path], tmp_path: Path, seed: int, ages: str) -> None:
    # the run's shared file of this life (tests/research's cohort is the same three lives)
    bundle = json.loads(synthea_patients(ages, seed=seed).read_text("utf-8"))
    # As the patient's records hold them: canonical JSON, one resource each (what the page and
    # the command line both read back before de-identifying).
    texts = [canonical_json(e["resource"]).decode() for e in bundle["entry"]]
    secret, study = bytes([seed]) * 32, bytes([seed + 1]) * 32
    as_of = datetime.now(UTC).date()
    page, ms = page_copies(texts, secret, study, as_of.isoformat())

    resources = [json.loads(t) for t in texts]
    key = study_key(UmbralSecretKey.from_secret_bytes(secret), study)
    deid = Deidentifier(key, types={r["id"]: r["resourceType"] for r in resources},
                        as_of=as_of)
    python = [None if (c := deid.resource(r)) is None else canonical_json(c).decode()
              for r in resources]
    assert len(page) == len(python) == len(resources)
    differ = [(resources[i]["resourceType"], resources[i]["id"]) for i in range(len(page))
              if page[i] != python[i]]
    assert not differ, f"{len(differ)} copies differ, first {differ[:3]}"
    shared = [json.loads(p) for p in page if p is not None]
    assert 0 < len(shared) < len(page)  # people and places left out
    print(f"seed {seed}: {len(resources)} resources de-identified by the page in {ms:.0f} ms "
          f"(load {Path('/proc/loadavg').read_text().split()[0]})")
    patient = next(r for r in shared if r["resourceType"] == "Patient")
    assert patient["meta"]["security"][0]["code"] == "safe-harbor"

    identifiers = direct_identifiers(bundle)
    raw = tmp_path / "raw"
    write_bulk_ndjson(resources, raw)
    assert len({i for _, i in scan(raw, identifiers)}) > 0.9 * len(identifiers)
    out = tmp_path / "page"
    write_bulk_ndjson(shared, out)
    assert scan(out, identifiers) == []
    text = "".join(p.read_text("utf-8") for p in out.glob("*.ndjson"))
    assert not contained((r["id"] for r in resources), text)
