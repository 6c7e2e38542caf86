"""``kizuna serve``: the home's settings, and a node that does not answer is one line."""

from __future__ import annotations

from pathlib import Path

from cli_harness import clean_env, run

from kizuna.chain.localnode import free_port


def test_serve_without_a_node_says_where_it_looked(home: Path) -> None:
    rpc = f"http://127.0.0.1:{free_port()}"
    env = clean_env(home, KIZUNA_RPC_URL=rpc, KIZUNA_CHAIN_ID="31337",
                    KIZUNA_SESSION_SECRET="a-test-secret-that-is-long-enough-0123456789")
    done = run(home, "serve", "--port", str(free_port()), env=env)
    assert done.code == 69, (done.out, done.err)
    errors = [line for line in done.err.splitlines() if line.startswith("kizuna: error:")]
    assert len(errors) == 1 and rpc in errors[0]
    assert "Traceback" not in done.err


def test_serve_reads_the_homes_configuration(home: Path) -> None:
    """The home's config.toml is serve's too (as for `kizuna config`): a bad value in it is
    refused by serve, naming the field."""
    home.mkdir(parents=True)
    (home / "config.toml").write_text('api_port = "not a port"\n')
    done = run(home, "serve", env=clean_env(home))
    assert done.code == 78, (done.out, done.err)
    assert "api_port" in done.err
