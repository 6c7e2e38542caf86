"""The one mapping from Kizuna's exception tree to exit codes, and the manual pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import run

from kizuna.chain.keystore import KeystoreCorrupted, KeystoreNotFound, WrongPassphrase
from kizuna.cli.output import ExitCode, exit_code_for
from kizuna.errors import (
    AccessDenied,
    ConfigError,
    ConflictError,
    ContentNotFound,
    ContractReverted,
    DeploymentError,
    FhirValidationError,
    InputError,
    IntegrityError,
    InvalidCid,
    KizunaError,
    NodeUnreachable,
    NotFoundError,
    StoreUnavailable,
    WrongChain,
)


@pytest.mark.parametrize(("error", "code"), [
    (KizunaError("x"), ExitCode.ERROR),
    (ContractReverted("GrantExpired"), ExitCode.ERROR),
    (IntegrityError("tampered"), ExitCode.ERROR),
    (DeploymentError("no code"), ExitCode.ERROR),
    (WrongChain(expected=1, actual=2), ExitCode.ERROR),
    (KeystoreCorrupted(Path("k.json"), "not JSON"), ExitCode.ERROR),
    (NotFoundError("x"), ExitCode.NOT_FOUND),
    (KeystoreNotFound(Path("k.json")), ExitCode.NOT_FOUND),
    (ContentNotFound("bafy"), ExitCode.NOT_FOUND),
    (AccessDenied("no grant"), ExitCode.ACCESS_DENIED),
    (WrongPassphrase(Path("k.json")), ExitCode.ACCESS_DENIED),
    (ConflictError("taken"), ExitCode.CONFLICT),
    (InputError("field", "why"), ExitCode.INVALID_INPUT),
    (FhirValidationError([("Patient.birthDate", "not a date")]), ExitCode.INVALID_INPUT),
    (InvalidCid("nope", "bad multibase"), ExitCode.INVALID_INPUT),
    (NodeUnreachable("down"), ExitCode.UNAVAILABLE),
    (StoreUnavailable("down"), ExitCode.UNAVAILABLE),
    (ConfigError("bad"), ExitCode.CONFIG),
])
def test_each_kind_of_error_has_its_exit_code(error: KizunaError, code: ExitCode) -> None:
    assert exit_code_for(error) is code


def test_exit_codes_are_distinct_and_sysexits_where_they_exist() -> None:
    values = [int(c) for c in ExitCode]
    assert len(values) == len(set(values))
    assert ExitCode.USAGE == 2 and ExitCode.UNAVAILABLE == 69 and ExitCode.CONFIG == 78
    assert ExitCode.INTERRUPTED == 128 + 2


@pytest.mark.parametrize("command", [["--help"], ["up", "--help"], ["status", "--help"],
                                     ["down", "--help"], ["config", "--help"],
                                     ["keys", "--help"]])
def test_help_reads_like_a_manual(tmp_path: Path, command: list[str]) -> None:
    done = run(tmp_path, *command)
    assert done.code == 0 and done.err == ""
    assert "Example" in done.out or "Start here" in done.out
    assert "kizuna " in done.out


def test_version(tmp_path: Path) -> None:
    done = run(tmp_path, "--version")
    assert done.code == 0 and done.out.startswith("kizuna, version ")
