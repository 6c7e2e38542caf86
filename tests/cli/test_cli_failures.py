"""Failure output of the role commands: one line on stderr, a meaningful exit code."""

from __future__ import annotations

from pathlib import Path

import click
from cli_harness import run
from roles_stack import Stack

from kizuna.chain.localnode import free_port
from kizuna.cli.patient import expand_scopes


def test_wrong_passphrase(stack: Stack) -> None:
    result = stack.kizuna("patient", "records", "--key", "aiko",
                          env=stack.env(KIZUNA_PASSPHRASE="not-it"))
    assert result.code == 4
    assert "wrong passphrase" in result.error_line


def test_unknown_provider(stack: Stack) -> None:
    result = stack.kizuna("patient", "grant", "dr-nobody", "Observation", "--days", "1",
                          "--key", "aiko")
    assert result.code == 3
    assert "unknown provider 'dr-nobody'" in result.error_line
    not_registered = stack.kizuna("patient", "grant", "0x" + "34" * 20, "Observation",
                                  "--days", "1", "--key", "aiko")
    assert not_registered.code == 3
    assert "not a provider" in not_registered.error_line or "not registered" in \
        not_registered.error_line


def test_revoked_grant(stack: Stack, new_patient: str) -> None:
    me = stack.address(new_patient)
    # set-up in process, as `patient grant` / `patient revoke` do (test_cli_patient runs them)
    stack.grant(new_patient, "dr-tanaka", "Immunization", days=1)
    with stack.patient(new_patient) as client:
        for label in expand_scopes(["Immunization"]):
            client.revoke(stack.address("dr-tanaka"), label)
    assert stack.ok("provider", "records", "--patient", me, "--key", "dr-tanaka",
                    "--json").json() == []
    result = stack.kizuna("patient", "revoke", "dr-tanaka", "Immunization", "--key",
                          new_patient)
    assert result.code == 3
    assert "no live grant" in result.error_line


def test_api_unreachable(stack: Stack) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("patient", "records", "--key", "aiko"),
                 ("provider", "patients", "--key", "dr-tanaka"),
                 ("audit", "verify", "--key", "auditor")):
        result = stack.kizuna(*args, "--api", url)
        assert result.code == 69, result.err
        assert f"the Kizuna API at {url} does not answer" in result.error_line


def test_usage_and_input_errors(stack: Stack) -> None:
    no_key = stack.kizuna("patient", "records")
    assert no_key.code == 6
    assert "--key" in no_key.error_line
    bad_date = stack.kizuna("patient", "grant", "dr-tanaka", "Observation", "--until",
                            "next tuesday", "--key", "aiko")
    assert bad_date.code == 6
    assert "until" in bad_date.error_line
    both = stack.kizuna("patient", "grant", "dr-tanaka", "Observation", "--key", "aiko")
    assert both.code == 6
    bad_scope = stack.kizuna("patient", "grant", "dr-tanaka", "NotAType", "--days", "1",
                             "--key", "aiko")
    assert bad_scope.code == 6
    unknown_record = stack.kizuna("patient", "get", "0xabcdef12", "--key", "aiko")
    assert unknown_record.code == 3
    assert "no record" in unknown_record.error_line
    as_json = stack.kizuna("patient", "grants", "--key", "nobody-here", "--json")
    assert as_json.code == 3
    assert '"kind"' in as_json.error_line


def test_every_command_has_a_manual(home: Path) -> None:
    """Each group's `--help` through the entry point lists its commands; each command's manual
    (the text its `--help` prints: click's get_help of the same command objects, in process
    rather than ~30 `kizuna` processes) has an example."""
    from kizuna.cli.main import cli

    root = click.Context(cli, info_name="kizuna")
    for group, commands in {
        "patient": ["add", "import", "records", "get", "grant", "revoke", "grants", "requests",
                    "answer", "guardian", "emergency-policy", "reads", "inbox", "open"],
        "provider": ["patients", "records", "read", "export", "request", "send",
                     "break-glass", "inbox"],
        "registrar": ["add-provider", "suspend", "reinstate", "providers"],
        "audit": ["log", "verify", "export", "anchor"],
    }.items():
        listing = run(home, group, "--help")
        assert listing.code == 0, listing.err
        found = cli.get_command(root, group)
        assert isinstance(found, click.Group)
        group_context = click.Context(found, info_name=group, parent=root)
        for command in commands:
            assert command in listing.out
            sub = found.get_command(group_context, command)
            assert sub is not None, f"kizuna {group} has no command {command}"
            manual = sub.get_help(click.Context(sub, info_name=command, parent=group_context))
            assert "Example" in manual, f"kizuna {group} {command} --help has no example"
