"""kizuna.cli.startup.loading: a server command's imports run with the cyclic collector paused;
then what they made is frozen and the collector runs again, however the block ends."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from kizuna.cli.startup import loading


def _in_a_fresh_interpreter(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120).stdout.strip()


def test_imports_run_paused_then_frozen_and_the_collector_resumes() -> None:
    out = _in_a_fresh_interpreter(
        "import gc\n"
        "from kizuna.cli.startup import loading\n"
        "collections = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and collections.append(1))\n"
        "frozen = gc.get_freeze_count()\n"
        "with loading():\n"
        "    paused = not gc.isenabled()\n"
        "    import kizuna.proxynode.server\n"
        "during = len(collections)\n"
        "print(paused, during, gc.isenabled(), gc.get_freeze_count() - frozen > 100_000)\n")
    # Not one collection while a proxy node's modules loaded (hundreds with the collector on),
    # and the objects they made are out of the collector's way afterwards.
    assert out == "True 0 True True", out


def test_the_collector_resumes_after_a_failure_and_a_paused_caller_stays_paused() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), loading():
        raise RuntimeError("a bad setting")
    assert gc.isenabled()
    gc.disable()
    try:
        with loading():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_server_commands_and_sessions_load_through_it() -> None:
    """``kizuna serve``, ``kizuna proxy serve`` and ``kizuna up`` import their modules in it."""
    import inspect

    from kizuna.cli import proxy, serve, up

    for command in (serve.serve, proxy.serve, up.up):
        source = inspect.getsource(command.callback)  # type: ignore[arg-type]
        assert "with loading():" in source, command.name
    # every command's module; the participants' commands, where their session imports the
    # signers, the client and web3; the auditor's (its --local service: web3, SQLAlchemy)
    from kizuna.cli import audit, participant
    from kizuna.cli.main import LazyGroup

    for function in (LazyGroup.get_command, participant.unlock_started,
                     participant.open_session, participant.connect_chain, audit._auditor):
        assert "with loading():" in inspect.getsource(function), function.__name__
