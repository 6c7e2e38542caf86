"""The API starts without ``siwe``: the library builds its ABNF grammar when imported (~0.3 s
of CPU), so :mod:`kizuna.api.auth` imports it in the functions of a sign-in, and an API
process that nobody signs in to (a test server, a ``kizuna up`` instance) never pays for it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from apienv import ApiServer, ChainEnv, own_module_settings, sign_in

from kizuna.config import Settings

pytestmark = pytest.mark.anvil

SHARED_STACK = True
"""A deployment of the module's own (tests/api/apienv.py, shares_stack); the test starts its own
server, on settings of the module's own (``module_settings``: its own port and database)."""


@pytest.fixture(scope="module")
def module_settings(module_chain_env: ChainEnv,
                    tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return own_module_settings(module_chain_env, tmp_path_factory)


def _imported(log: Path) -> set[str]:
    """The modules the server imported so far (``-X importtime`` lines in its log)."""
    return {line.rsplit("|", 1)[1].strip() for line in log.read_text().splitlines()
            if line.startswith("import time:")}


def test_the_siwe_grammar_is_built_at_the_first_sign_in(settings: Settings, chain_env: ChainEnv,
                                                        tmp_path: Path) -> None:
    server = ApiServer(settings=settings, log_path=tmp_path / "api.log",
                       extra_env={"PYTHONPROFILEIMPORTTIME": "1"}, fresh=True).start()
    try:
        started = _imported(server.log_path)
        assert {"fastapi", "kizuna.api.auth"} <= started  # the log lists the server's imports
        assert not {"siwe", "abnf"} & started
        with httpx.Client(base_url=server.url, timeout=60) as http:
            answer = sign_in(http, chain_env.new_signer(funded=False))
        assert answer["token"]
        assert {"siwe", "abnf"} <= _imported(server.log_path)
    finally:
        server.stop()
