"""``kizuna patient ips | share | links | unshare`` through the real entry point against the
running ``kizuna up --demo``: docs/sharing.md's recipes (the README's "share a summary" is the
same block, checked equal) run as written with bash, then the link they print is opened by the
independent reader (tests/sharing/shl_reader.py: httpx + jwcrypto, no Kizuna code), the access
shows in ``kizuna patient links``, and after the "watch and end" recipe the link answers 404."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest
from roles_stack import Stack

from kizuna.sharing.ips import check_ips, concept_text
from kizuna.stack.demo_data import DEMO_PATIENTS, history

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sharing"))

from shl_reader import ShlRefused, open_link, payload_of

ROOT = Path(__file__).resolve().parents[2]


def recipe(doc: Path, name: str) -> str:
    found = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w*\n(.*?)\n```",
                      doc.read_text(encoding="utf-8"), re.S)
    assert found, f"{doc.name} has no recipe {name!r}"
    return found.group(1)


def run_recipe(stack: Stack, script: str, cwd: Path, key: str) -> str:
    env = stack.env(KIZUNA_KEY=key)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"recipe failed:\n{script}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_sharing_recipes_run_as_written(stack: Stack, new_patient: str,
                                            tmp_path: Path) -> None:
    share_summary = recipe(ROOT / "docs" / "sharing.md", "share-summary")
    assert recipe(ROOT / "README.md", "share-summary") == share_summary
    source = tmp_path / "history.json"
    source.write_text(json.dumps(history(DEMO_PATIENTS[0])))
    stack.ok("patient", "import", str(source), "--key", new_patient)

    out = run_recipe(stack, share_summary, tmp_path, new_patient)
    summary = json.loads((tmp_path / "summary.json").read_text())
    check_ips(summary)
    problems = [r["resource"] for r in summary["entry"]
                if r["resource"]["resourceType"] == "Condition"]
    assert problems
    pdf = pypdf.PdfReader(io.BytesIO((tmp_path / "summary.pdf").read_bytes()))
    text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
    for problem in problems:
        assert " ".join(concept_text(problem["code"]).split()) in text
    assert (tmp_path / "link.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    link = out.strip().splitlines()[-1]
    assert link.startswith("shlink:/") and payload_of(link)["flag"] == "P"
    assert "\u2580" in (tmp_path / "share.txt").read_text()  # the QR code drawn in text

    with pytest.raises(ShlRefused) as wrong:
        open_link(link, recipient="a guess", passcode="1234")
    assert wrong.value.status == 401
    opened = open_link(link, recipient="Dr. Okada, Sapporo", passcode="4711-kizuna")
    shared = opened.contents[0][1]  # built again by `share --ips`: a new document, same content
    assert shared["type"] == "document" and shared["entry"][1:] == summary["entry"][1:]

    listed = stack.ok("patient", "links", "--key", new_patient, "--json").json()
    (only,) = listed
    assert [(a["recipient"], a["outcome"]) for a in reversed(only["accesses"])] == [
        ("a guess", "wrong-passcode"), ("Dr. Okada, Sapporo", "manifest"),
        ("Dr. Okada, Sapporo", "file")]
    human = run_recipe(stack, recipe(ROOT / "docs" / "sharing.md", "watch-and-end"),
                       tmp_path, new_patient)
    assert "Dr. Okada, Sapporo" in human and "wrong-passcode" in human
    with pytest.raises(ShlRefused) as ended:
        open_link(link, recipient="Dr. Okada, Sapporo", passcode="4711-kizuna")
    assert ended.value.status == 404
    assert stack.ok("patient", "links", "--key", new_patient, "--json").json()[0][
        "state"] == "revoked"


def test_share_refuses_unclear_requests(stack: Stack, new_patient: str) -> None:
    neither = stack.kizuna("patient", "share", "--key", new_patient)
    assert neither.code != 0 and "--ips or --records" in neither.err
    past = stack.kizuna("patient", "share", "--ips", "--expires", "2001-01-01",
                        "--key", new_patient)
    assert past.code != 0 and "past" in past.err
    unknown = stack.kizuna("patient", "unshare", "nosuchlink", "--key", new_patient)
    assert unknown.code != 0 and "names no link" in unknown.err


def test_share_chosen_records_by_id_prefix(stack: Stack, new_patient: str) -> None:
    # set-up in process, as `patient add` adds each (that command: test_cli_patient): two of
    # the demo history's records, a Condition and another, so that the prefix chooses one
    resources = [e["resource"] for e in history(DEMO_PATIENTS[0])["entry"]]
    condition = next(r for r in resources if r["resourceType"] == "Condition")
    other = next(r for r in resources if r["resourceType"] == "Observation")
    prefix = stack.add_resource(new_patient, condition)["record_id"][:12]
    stack.add_resource(new_patient, other)
    made = stack.ok("patient", "share", "--records", prefix, "--expires", "24h",
                    "--key", new_patient, "--json").json()
    assert made["link"].startswith("shlink:/") and made["expires_at"] > 0
    (content,) = open_link(made["link"], recipient="family").contents
    (entry,) = content[1]["entry"]
    assert entry["resource"]["resourceType"] == "Condition"
    payload = payload_of(made["link"])  # no passcode: no P flag; the expiry is in the link
    assert "flag" not in payload and payload["exp"] == made["expires_at"]
