"""``kizuna researcher study create / export`` and ``kizuna patient studies / consent /
withdraw`` against the running ``kizuna up --demo``, the README's "research" recipe run as
written: a key that is not a verified provider (the auditor's) cannot register a study; dr-sato
registers one; aiko (gasless, relayed: the default) and kenji (``--send-myself``) consent with
their vital signs; the export has one NDJSON file
per type, with none of the demo patients' names, birth dates or cities; after aiko withdraws, the
next export holds kenji's copy only (aiko's withdrawal relayed, the default; kenji's own with
``--send-myself``)."""

from __future__ import annotations

import json
from pathlib import Path

from eth_utils.crypto import keccak
from roles_stack import Stack
from test_cli_data_requests import recipe  # the README's recipe reader (same directory)
from web3 import Web3

from kizuna.cli.output import ExitCode

SCOPE = "Observation:vital-signs"
PLACEHOLDER = "0x5e7d1a"


def _counts(done_json: dict[str, object]) -> dict[str, int]:
    counts = done_json["counts"]
    assert isinstance(counts, dict)
    return counts


def test_the_readme_recipe_from_registration_to_withdrawal(stack: Stack, tmp_path: Path) -> None:
    refused = stack.kizuna("researcher", "study", "create", "--purpose", "x", "--scope", SCOPE,
                           "--ends", "30d", "--key", "auditor")
    assert refused.code == ExitCode.INVALID_INPUT, refused.err
    assert "not a verified, active provider" in refused.error_line

    create, studies, consent, export, withdraw = recipe("research")
    made = stack.ok(*create, "--json").json()
    study = made["study"]
    assert made["scopes"] == [SCOPE, "Condition"]

    def step(argv: list[str]) -> list[str]:
        out = [study if a == PLACEHOLDER else a for a in argv]
        return [str(tmp_path / a) if a == "cohort" else a for a in out]

    listed = stack.ok(*studies, "--json").json()
    assert [s["consented"] for s in listed if s["study"] == study] == [False]

    wrong = stack.kizuna("patient", "consent", study, "--scope", "Procedure", "--key", "aiko")
    assert wrong.code == ExitCode.INVALID_INPUT and "not asked for" in wrong.error_line

    aiko = stack.ok(*step(consent), "--json").json()  # gasless: a signature, relayed
    kenji = stack.ok("patient", "consent", study, "--scope", SCOPE, "--key", "kenji",
                     "--send-myself", "--json").json()
    assert aiko["resources"] > 0 and kenji["resources"] > 0
    w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
    sent = {who: w3.eth.get_transaction(done["consent_tx"])
            for who, done in (("aiko", aiko), ("kenji", kenji))}
    by_sig = keccak(text="consentBySig(address,bytes32,bytes32,uint256,bytes)")[:4]
    own = keccak(text="consent(bytes32,bytes32)")[:4]
    assert bytes(sent["aiko"]["input"])[:4] == by_sig
    assert bytes(sent["kenji"]["input"])[:4] == own
    assert sent["aiko"]["from"] != sent["kenji"]["from"]
    listed = stack.ok(*studies, "--json").json()
    assert [s["consented"] for s in listed if s["study"] == study] == [True]
    assert "consented" in stack.ok(*studies).out  # the table says so too

    first = _counts(stack.ok(*step(export), "--json").json())
    assert first == {"Observation": aiko["resources"] + kenji["resources"]}
    text = (tmp_path / "cohort" / "Observation.ndjson").read_text("utf-8")
    assert len([json.loads(line) for line in text.splitlines()]) == first["Observation"]
    for identifier in ("Aiko", "Suzuki", "Kenji", "Watanabe", "1968-04-12", "1985-09-03",
                       "Kyoto", "Osaka"):
        assert identifier.lower() not in text.lower(), identifier

    left = stack.ok(*step(withdraw), "--json").json()  # gasless too: relayed by default
    withdrawn = w3.eth.get_transaction(left["tx"])
    assert bytes(withdrawn["input"])[:4] == keccak(
        text="withdrawBySig(address,bytes32,uint256,bytes)")[:4]
    assert withdrawn["from"] == sent["aiko"]["from"]  # the service's relayer
    second = _counts(stack.ok("researcher", "export", study, "-o", str(tmp_path / "second"),
                              "--key", "dr-sato", "--json").json())
    assert second == {"Observation": kenji["resources"]}
    again = stack.kizuna(*step(withdraw))
    assert again.code == ExitCode.INVALID_INPUT and "no current consent" in again.error_line
    # --send-myself: kenji's own withdraw transaction.
    mine = stack.ok("patient", "withdraw", study, "--key", "kenji", "--send-myself",
                    "--json").json()
    own_withdrawal = w3.eth.get_transaction(mine["tx"])
    assert bytes(own_withdrawal["input"])[:4] == keccak(text="withdraw(bytes32)")[:4]
    assert own_withdrawal["from"] == sent["kenji"]["from"]
