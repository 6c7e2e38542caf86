"""No function of the package is longer than 80 lines (issue 11): a longer one is several steps
that want names of their own. Counted from the ``def`` line to the function's last line,
docstring and comments included (decorators, such as a command's options, are not); nested
functions count within their parent."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kizuna"
MAX_LINES = 80


def long_functions(root: Path, limit: int = MAX_LINES) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} "
                                 f"{node.name} ({lines} lines)")
    return found


def test_no_function_of_the_package_is_longer_than_80_lines() -> None:
    assert long_functions(PACKAGE) == []


def test_the_count_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    (tmp_path / "ok.py").write_text("async def fine():\n" + "    pass\n" * (MAX_LINES - 1))
    assert long_functions(tmp_path) == [f"{tmp_path.name}/long.py:5 long ({MAX_LINES + 1} lines)"]


def test_decorators_do_not_count(tmp_path: Path) -> None:
    options = "@staticmethod\n" * 5
    (tmp_path / "m.py").write_text(options + "def f():\n" + "    pass\n" * (MAX_LINES - 1))
    assert long_functions(tmp_path) == []
