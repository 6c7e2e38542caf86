"""The suite covers the contracts' whole surface: every function, custom error and event of each
ABI is named by that contract's test modules, and events index their patient and provider."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kizuna.chain.artifacts import load_artifact

HERE = Path(__file__).resolve().parent
MODULES = {
    # Data requests (the answer on the request's own authority) are specified by their Foundry
    # suite; the service's use of them by tests/services/test_data_requests*.py.
    "ConsentLedger": [*sorted(HERE.glob("test_consent_*.py")),
                      HERE.parent.parent / "contracts" / "test" / "CareEventDataRequests.t.sol"],
    "ProviderRegistry": [HERE / "test_provider_registry.py"],
    "AccessLog": [HERE / "test_access_log_contract.py"],
    # The study registry's behaviour is specified by its Foundry suite and the research flow.
    "StudyRegistry": [HERE.parent.parent / "contracts" / "test" / "StudyRegistry.t.sol",
                      HERE.parent / "research" / "test_research_flow.py"],
}
UNREACHABLE = {
    # Inherited from OpenZeppelin, listed in the ABI, but no code path of Kizuna's reaches them.
    "InvalidAccountNonce": "Nonces._useCheckedNonce is never called (nonces are ERC20Permit-style)",
    "InvalidShortString": "EIP712's name and version are short constants",
    "StringTooLong": "EIP712's name and version are short constants",
    "EIP712DomainChanged": "the domain is immutable",
    "RoleAdminChanged": "no role admin is ever changed",
}


def _entries(contract: str) -> list[tuple[str, str]]:
    return sorted({(e["type"], e["name"]) for e in load_artifact(contract).abi_list
                   if e["type"] in ("function", "error", "event")})


@pytest.mark.parametrize("contract", sorted(MODULES))
def test_everyAbiEntry_isExercisedByItsTests(contract: str) -> None:
    source = "\n".join(path.read_text(encoding="utf-8") for path in MODULES[contract])
    missing = [f"{kind} {name}" for kind, name in _entries(contract)
               if name not in UNREACHABLE and not re.search(rf"\b{re.escape(name)}\b", source)]
    assert not missing, f"{contract}: no test names {missing}"


@pytest.mark.parametrize("contract", ["ConsentLedger", "ProviderRegistry", "StudyRegistry"])
def test_events_indexPatientAndProvider(contract: str) -> None:
    checked = 0
    for event in (e for e in load_artifact(contract).abi_list if e["type"] == "event"):
        for field in event["inputs"]:
            if field["name"] in ("patient", "provider"):
                assert field["indexed"], f"{event['name']}.{field['name']} is not indexed"
                checked += 1
    assert checked >= {"ConsentLedger": 20, "ProviderRegistry": 4}.get(contract, 1)


def test_events_areInThePastTense() -> None:
    for contract in MODULES:
        for event in (e for e in load_artifact(contract).abi_list if e["type"] == "event"):
            # A past participle as a word: AccessGranted, AccessGrantedBatch, EmergencyPolicySet,
            # StudyConsentWithdrawn
            assert re.search(r"([a-z]ed|Set|Sent|Withdrawn)(?=[A-Z]|$)", event["name"]), \
                event["name"]
