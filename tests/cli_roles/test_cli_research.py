"""``kizuna researcher study create / export`` and ``kizuna patient studies / consent /
withdraw`` against the running ``kizuna up --demo``: a key that is not a verified provider
cannot register a study; dr-sato registers one; aiko and kenji consent with their vital signs;
the export has one NDJSON file per type, with none of the demo patients' names, birth dates or
cities; after aiko withdraws, the next export holds kenji's copy only."""

from __future__ import annotations

import json
from pathlib import Path

from roles_stack import Stack

from kizuna.cli.output import ExitCode

SCOPE = "Observation:vital-signs"


def _export(stack: Stack, study: str, out: Path) -> dict[str, int]:
    done = stack.ok("researcher", "export", study, "-o", str(out), "--key", "dr-sato",
                    "--json")
    counts: dict[str, int] = done.json()["counts"]
    return counts


def test_a_study_from_registration_to_withdrawal(stack: Stack, tmp_path: Path) -> None:
    refused = stack.kizuna("researcher", "study", "create", "--purpose", "x", "--scope", SCOPE,
                           "--ends", "30d", "--key", "newdoc")
    assert refused.code == ExitCode.INVALID_INPUT, refused.err
    assert "not a verified, active provider" in refused.error_line

    made = stack.ok("researcher", "study", "create", "--purpose", "Blood pressure in adults",
                    "--scope", SCOPE, "--scope", "Condition", "--ends", "30d",
                    "--key", "dr-sato", "--json").json()
    study = made["study"]
    assert made["scopes"] == [SCOPE, "Condition"]

    listed = stack.ok("patient", "studies", "--key", "aiko", "--json").json()
    assert [s["consented"] for s in listed if s["study"] == study] == [False]

    wrong = stack.kizuna("patient", "consent", study, "--scope", "Procedure", "--key", "aiko")
    assert wrong.code == ExitCode.INVALID_INPUT and "not asked for" in wrong.error_line

    shared = {name: stack.ok("patient", "consent", study, "--scope", SCOPE, "--key", name,
                             "--json").json() for name in ("aiko", "kenji")}
    assert all(s["resources"] > 0 for s in shared.values())
    listed = stack.ok("patient", "studies", "--key", "aiko", "--json").json()
    assert [s["consented"] for s in listed if s["study"] == study] == [True]

    first = _export(stack, study, tmp_path / "first")
    assert first == {"Observation": shared["aiko"]["resources"] + shared["kenji"]["resources"]}
    text = (tmp_path / "first" / "Observation.ndjson").read_text("utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == first["Observation"]
    for identifier in ("Aiko", "Suzuki", "Kenji", "Watanabe", "1968-04-12", "1985-09-03",
                       "Kyoto", "Osaka"):
        assert identifier.lower() not in text.lower(), identifier

    stack.ok("patient", "withdraw", study, "--key", "aiko")
    second = _export(stack, study, tmp_path / "second")
    assert second == {"Observation": shared["kenji"]["resources"]}
    again = stack.kizuna("patient", "withdraw", study, "--key", "aiko")
    assert again.code == ExitCode.INVALID_INPUT and "no current consent" in again.error_line
