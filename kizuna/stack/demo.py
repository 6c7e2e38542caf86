"""``kizuna up --demo``: demo people with real encrypted histories, grants and reads.

On the first ``--demo`` start of a home this creates, through the same client and service code
every user goes through (``kizuna.client``, in-process on the stack's ``ServiceContext``):

* keys in ``$KIZUNA_HOME/keys`` for a registrar, two patients (``aiko``, ``kenji``) and two
  providers (``dr-tanaka``, ``dr-sato``), passphrase :data:`DEMO_PASSPHRASE`, light scrypt.
  They are anvil's well-known development accounts (funded on the local chain): never use them
  on a real chain;
* the providers verified by the registrar in the ProviderRegistry, with their wallet-derived
  Umbral keys;
* each patient's FHIR history (``kizuna.stack.demo_data``) imported as ``kizuna patient
  import`` imports one (:mod:`kizuna.client.importer`): encrypted on the patient's side, stored,
  and registered on-chain as one batch (one Merkle root, one relayed signature: gasless), and a
  blood pressure aiko took at home added on its own, as ``kizuna patient add`` adds a record
  (registered alone) — skipped for a patient who has records already, so an interrupted demo
  resumes;
* grants: aiko → dr-tanaka lab results, conditions and medications (30 days), aiko → dr-sato
  vital signs (90 days), kenji → dr-tanaka vital signs (30 days);
* reads: dr-tanaka reads three of aiko's lab results (signed requests → receipts, anchored by the
  API's anchorer), and sends aiko a visit report (encrypted to her inbox key).

What was made is written to ``$KIZUNA_HOME/demo.json``; a later ``--demo`` start only reports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from eth_utils.crypto import keccak

from kizuna.chain.localnode import dev_private_keys
from kizuna.chain.relayer import Relayer
from kizuna.chain.signers import LocalKeySigner
from kizuna.config import Settings
from kizuna.errors import ConfigError
from kizuna.services.context import ServiceContext
from kizuna.stack.demo_data import DEMO_PATIENTS, history, home_readings
from kizuna.stack.home import KizunaHome
from kizuna.stack.keyring import Keyring

if TYPE_CHECKING:
    from kizuna.client.patient import PatientClient

DEMO_PASSPHRASE = "kizuna-demo"
"""The demo keys' passphrase (printed by ``kizuna up --demo``: these keys guard nothing real)."""

DEMO_ACCOUNTS: dict[str, tuple[str, int]] = {
    # name: (role, index of anvil's development account)
    "registrar": ("registrar", 1),
    "aiko": ("patient", 4),
    "kenji": ("patient", 5),
    "dr-tanaka": ("provider", 6),
    "dr-sato": ("provider", 7),
}
REGISTRAR_ACCOUNT = 1
ANCHORER_ACCOUNT = 2
RELAYER_ACCOUNT = 3

DEMO_GRANTS: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("aiko", "dr-tanaka",
     ("Observation:laboratory", "Condition:problem-list-item", "MedicationRequest"), 30),
    ("aiko", "dr-sato", ("Observation:vital-signs",), 90),
    ("kenji", "dr-tanaka", ("Observation:vital-signs",), 30),
)
DEMO_READS = 3
DAY = 86_400


class Step(Protocol):
    """Progress reporting: ``step(description, total)`` gives a context with ``advance()``."""

    def __call__(self, description: str, total: int | None
                 ) -> AbstractContextManager[Any]: ...


@dataclass(frozen=True, slots=True)
class DemoIdentity:
    name: str
    role: str
    address: str


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What the demo made (also ``$KIZUNA_HOME/demo.json``)."""

    identities: list[DemoIdentity]
    records: dict[str, int]
    grants: list[str]
    reads: int
    messages: int
    passphrase: str = DEMO_PASSPHRASE
    created_now: bool = field(default=True, compare=False)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("created_now")
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DemoSummary:
        return cls(identities=[DemoIdentity(**i) for i in data["identities"]],
                   records=dict(data["records"]), grants=list(data["grants"]),
                   reads=int(data["reads"]), messages=int(data.get("messages", 0)),
                   passphrase=str(data.get("passphrase", DEMO_PASSPHRASE)), created_now=False)


def load_demo(home: KizunaHome) -> DemoSummary | None:
    """The demo of this home, if one was made."""
    try:
        return DemoSummary.from_json(json.loads(home.demo_file.read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return None


def _signers(home: KizunaHome) -> dict[str, LocalKeySigner]:
    """The demo's keys, in the home's keyring the first time (light scrypt), and their signers.
    The keys are anvil's development keys, known here: a keystore is only checked to hold its
    one (by the address it declares), never decrypted again (a scrypt each)."""
    keys = dev_private_keys(max(index for _, index in DEMO_ACCOUNTS.values()) + 1)
    ring = Keyring(home.keys_dir)
    signers: dict[str, LocalKeySigner] = {}
    for name, (_, index) in DEMO_ACCOUNTS.items():
        signer = LocalKeySigner(keys[index])
        if not ring.exists(name):
            ring.import_private_key(name, keys[index], DEMO_PASSPHRASE, light_kdf=True)
        elif ring.address(name) != signer.address:
            raise ConfigError(f"the key {name!r} in {home.keys_dir} is not the demo's "
                              f"({signer.address}): move it away to make the demo here")
        signers[name] = signer
    return signers


def create_demo(*, home: KizunaHome, ctx: ServiceContext, settings: Settings,
                step: Step) -> DemoSummary:
    """Make the demo (see the module docstring), or report the one this home has."""
    existing = load_demo(home)
    if existing is not None:
        return existing
    # Here, not at the top: the clients are needed only when a demo is made, not by every
    # `kizuna up`.
    from kizuna.client.local import LocalService
    from kizuna.client.patient import PatientClient
    from kizuna.client.provider import ProviderClient

    if settings.relayer_key is None:
        raise ConfigError("relayer_key: the demo registers records gaslessly through a relayer; "
                          "set KIZUNA_RELAYER_KEY")
    relayer = Relayer(ctx.chain, LocalKeySigner(settings.relayer_key.get_secret_value()))
    signers = _signers(home)
    registrar = signers["registrar"]
    if not ctx.chain.registry.is_registrar(registrar.address):
        raise ConfigError(f"the demo registrar {registrar.address} is not a registrar of this "
                          "deployment (it was not made by `kizuna up`)")

    service = LocalService(ctx, relayer=relayer)
    providers = {name: ProviderClient(signer=signers[name], service=service, chain=ctx.chain)
                 for name, (role, _) in DEMO_ACCOUNTS.items() if role == "provider"}
    with step("Verifying the demo providers", len(providers)) as bar:
        for name, provider in providers.items():
            if not ctx.chain.registry.is_registered(provider.address):
                ctx.chain.registry.add_provider(
                    provider.address, provider.public_key.to_bytes(),
                    keccak(text=f"kizuna demo licence of {name}"), signer=registrar)
            bar.advance()

    patients = {p.key_name: PatientClient(signer=signers[p.key_name], service=service,
                                          chain=ctx.chain)
                for p in DEMO_PATIENTS}
    records = _import_histories(patients, home, step)
    lab_records = [bytes(r.record_id) for r in
                   patients["aiko"].records(labels=["Observation:laboratory"])]

    granted: list[str] = []
    with step("Granting access", len(DEMO_GRANTS)) as bar:
        for patient_name, provider_name, labels, days in DEMO_GRANTS:
            client = patients[patient_name]
            client.grant(providers[provider_name].address, list(labels),
                         expires_at=client.now() + days * DAY)
            granted.append(f"{patient_name} → {provider_name}: {', '.join(labels)} "
                           f"({days} days)")
            bar.advance()

    tanaka = providers["dr-tanaka"]
    aiko = patients["aiko"]
    with step("dr-tanaka reads aiko's lab results", DEMO_READS) as bar:
        for record_id in lab_records[-DEMO_READS:]:
            tanaka.read(patient=aiko.address, record_id=record_id)
            bar.advance()
    report = json.dumps({
        "resourceType": "Communication", "status": "completed",
        "payload": [{"contentString": "HbA1c is improving on metformin; keep the dose. "
                                      "Next check in six months."}]}).encode()
    tanaka.send(aiko.address, "report", report)

    summary = DemoSummary(
        identities=[DemoIdentity(name, role, signers[name].address)
                    for name, (role, _) in DEMO_ACCOUNTS.items()],
        records=records, grants=granted, reads=min(DEMO_READS, len(lab_records)), messages=1)
    home.demo_file.write_text(json.dumps(summary.to_json(), indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    return summary


def _import_histories(patients: dict[str, PatientClient], home: KizunaHome,
                      step: Step) -> dict[str, int]:
    """Each demo patient's inbox key published, FHIR history imported and own readings added
    (once: an interrupted demo resumes without duplicating histories); how many records each
    has."""
    # Here, not at the top: the importer and the FHIR models (~0.15 CPU-s) the histories are
    # validated with are needed only when a demo is made, not by every `kizuna up`.
    from kizuna.client.importer import Importer, bundle_source
    from kizuna.storage.fhir.importer import import_resource

    records: dict[str, int] = {}
    for person in DEMO_PATIENTS:
        client = patients[person.key_name]
        client.publish_inbox_key()
        if not client.records():
            bundle = history(person)
            source = bundle_source(bundle, json.dumps(bundle).encode(),
                                   name=f"{person.key_name}-history.json")
            with step(f"Encrypting and registering {person.given}'s history",
                      len(source.records)) as bar:
                # One worker: a demo history is fewer records than one pool task seals.
                Importer(client, journal_root=home.imports_dir, workers=1,
                         on_progress=_advancing(bar)).run([source])
            for reading in home_readings(person):
                added = import_resource(reading)
                client.add_record(added.content, label=added.scope_label,
                                  content_type=added.content_type)
        records[person.key_name] = len(client.records())
    return records


def _advancing(bar: Any) -> Callable[[int, int], None]:
    """The importer's ``(done, total)`` progress as a step's ``advance(amount)``."""
    shown = 0

    def advance(done: int, _total: int) -> None:
        nonlocal shown
        bar.advance(done - shown)
        shown = done

    return advance


def dev_key(index: int) -> str:
    """Anvil's development private key ``index`` (local chain only)."""
    return dev_private_keys(index + 1)[index]


def no_progress(description: str, total: int | None) -> AbstractContextManager[Any]:
    """A :class:`Step` that shows nothing (library use, tests)."""
    from contextlib import nullcontext

    class _Quiet:
        def advance(self, amount: float = 1) -> None:
            return None

    return nullcontext(_Quiet())


__all__ = [
    "ANCHORER_ACCOUNT",
    "DEMO_ACCOUNTS",
    "DEMO_GRANTS",
    "DEMO_PASSPHRASE",
    "REGISTRAR_ACCOUNT",
    "RELAYER_ACCOUNT",
    "DemoIdentity",
    "DemoSummary",
    "Step",
    "create_demo",
    "dev_key",
    "load_demo",
    "no_progress",
]
