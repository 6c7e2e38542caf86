"""``kizuna config``: sources in priority order, the home's paths, secrets never shown."""

from __future__ import annotations

from pathlib import Path

from cli_harness import clean_env, run

SECRET = "s3cr3t-" + "x" * 40
RELAYER = "0x" + "ab" * 32


def test_environment_beats_file_beats_home_beats_default(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "kizuna.toml"
    config.write_text(f'session_secret = "{SECRET}"\napi_port = 9001\nrpc_url = '
                      f'"http://127.0.0.1:7000"\nrelayer_key = "{RELAYER}"\n')
    env = clean_env(home, KIZUNA_CONFIG=str(config), KIZUNA_API_PORT="9002",
                    KIZUNA_DATABASE_URL="postgresql://kizuna:hunter2@db.example:5432/kizuna")
    done = run(home, "config", "--json", env=env)
    assert done.code == 0, done.err
    shown = done.json()
    values, sources = shown["values"], shown["sources"]
    assert Path(shown["home"]) == home and Path(shown["config_file"]) == config
    assert values["api_port"] == 9002 and sources["api_port"] == "env KIZUNA_API_PORT"
    assert values["rpc_url"] == "http://127.0.0.1:7000" and sources["rpc_url"] == "config file"
    assert Path(values["store_path"]) == home / "store" and sources["store_path"] == "KIZUNA_HOME"
    assert Path(values["deployment_file"]) == home / "deployments" / "31337.json"
    assert values["anchor_interval_s"] == 60.0 and sources["anchor_interval_s"] == "default"
    # secrets: redacted, in JSON and in the table
    assert values["session_secret"] == "**********" and values["relayer_key"] == "**********"
    assert values["database_url"] == "postgresql://kizuna:**********@db.example:5432/kizuna"
    table = run(home, "config", env=env)
    assert table.code == 0
    for leak in (SECRET, RELAYER, "ab" * 32, "hunter2"):
        assert leak not in done.out + done.err + table.out + table.err


def test_the_homes_config_toml_is_used_when_present(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(f'session_secret = "{SECRET}"\nanchor_interval_s = 5\n')
    done = run(home, "config", "--json")
    assert done.code == 0, done.err
    assert Path(done.json()["config_file"]) == home / "config.toml"
    assert done.json()["values"]["anchor_interval_s"] == 5.0


def test_rpc_url_tokens_are_redacted(home: Path) -> None:
    env = clean_env(home, KIZUNA_ENVIRONMENT="development",
                    KIZUNA_RPC_URL="https://mainnet.example.io/v3/0123456789abcdef0123456789abcdef",
                    KIZUNA_IPFS_API="https://ipfs.example/api?token=letmein")
    values = run(home, "config", "--json", env=env).json()["values"]
    assert values["rpc_url"] == "https://mainnet.example.io/v3/**********"
    assert values["ipfs_api"] == "https://ipfs.example/api?token=**********"


def test_production_without_a_session_secret_is_a_configuration_error(home: Path) -> None:
    done = run(home, "config")
    assert done.code == 78
    assert "session_secret" in done.error_line and "kizuna up" in done.error_line


def test_a_bad_value_names_the_field(home: Path) -> None:
    env = clean_env(home, KIZUNA_ENVIRONMENT="development", KIZUNA_RPC_URL="ftp://nope")
    done = run(home, "config", env=env)
    assert done.code == 78
    assert "rpc_url" in done.error_line


def test_a_missing_config_file_is_named(home: Path, tmp_path: Path) -> None:
    done = run(home, "config", "--config", str(tmp_path / "absent.toml"))
    assert done.code == 78
    assert "absent.toml does not exist" in done.error_line


def test_usage_errors_exit_2(home: Path) -> None:
    assert run(home, "config", "--no-such-option").code == 2
    assert run(home, "no-such-command").code == 2
