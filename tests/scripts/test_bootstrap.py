"""``scripts/bootstrap.sh`` is sourced by users into their own shell (the README's
``. scripts/bootstrap.sh``): it must set PATH without changing that shell's options, and a
failed set-up must hand its status back instead of closing the shell."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stamp(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _tree(tmp_path: Path, *, python_status: int) -> Path:
    """A copy of the script in a project whose every step is already done (stamps match),
    except that a mismatching Python stamp makes the first step run a ``python`` that exits
    with ``python_status``."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    for name in ("pyproject.toml", "package.json", "tools/ipfs/package.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    python = venv_bin / "python"
    python.write_text(f"#!/bin/sh\nexit {python_status}\n")
    python.chmod(0o755)
    (tmp_path / ".venv" / ".kizuna-stamp").write_text("stale\n")  # the Python step runs
    for modules, package in (("node_modules", "package.json"),
                             ("tools/ipfs/node_modules", "tools/ipfs/package.json")):
        (tmp_path / modules).mkdir(parents=True)
        (tmp_path / modules / ".kizuna-stamp").write_text(_stamp(tmp_path / package) + "\n")
    return tmp_path


def _source(tree: Path) -> list[str]:
    """Source the script in a shell without errexit (as an interactive one), then run a
    failing command: the lines the shell printed afterwards."""
    script = (f'set +e +u; before="$-"; . "{tree}/scripts/bootstrap.sh"; status=$?; '
              'echo "status=$status"; echo "same-options=$([ "$-" = "$before" ] && echo yes)"; '
              'false; echo "alive"; echo "path=${PATH%%:*}"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    return done.stdout.splitlines()


def test_sourcing_keeps_the_shell_options_and_sets_path(tmp_path: Path) -> None:
    tree = _tree(tmp_path, python_status=0)
    lines = _source(tree)
    assert "status=0" in lines
    assert "same-options=yes" in lines
    assert "alive" in lines
    assert f"path={tree}/.venv/bin" in lines
    assert (tree / ".venv" / ".kizuna-stamp").read_text().strip() == _stamp(tree / "pyproject.toml")


def test_a_failed_setup_returns_its_status_and_leaves_the_shell_open(tmp_path: Path) -> None:
    tree = _tree(tmp_path, python_status=7)
    lines = _source(tree)
    assert "status=7" in lines
    assert "same-options=yes" in lines
    assert "alive" in lines
    # The step that failed did not mark itself done.
    assert (tree / ".venv" / ".kizuna-stamp").read_text() == "stale\n"


def test_run_as_a_script_a_failure_exits_non_zero(tmp_path: Path) -> None:
    tree = _tree(tmp_path, python_status=3)
    done = subprocess.run(["bash", str(tree / "scripts" / "bootstrap.sh")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "set-up failed" in done.stderr
