"""Deep JSON is refused before decoding, even where a library raised the recursion limit.

py-evm and py_ecc set ``sys.setrecursionlimit(100_000)`` when imported; Python's C JSON decoder
then recurses until the C stack overflows and the process dies. The check runs in a child
process so that a regression shows as a failed test, not a dead test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import sys
    sys.setrecursionlimit(100_000)  # what importing py_ecc / py-evm does
    from kizuna.errors import FhirValidationError
    from kizuna.storage.fhir.jsonio import load_json
    for text in ("[" * 200_000 + "]" * 200_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        try:
            load_json(text)
        except FhirValidationError as exc:
            assert exc.reason == "JSON nested too deeply", exc.reason
        else:
            raise AssertionError("deep JSON was decoded")
    assert load_json('{"s": "[[[[{{{{", "n": [[1]]}') == {"s": "[[[[{{{{", "n": [[1]]}
    from kizuna.storage.fhir.canonical import canonical_json
    deep = {}
    for _ in range(5_000):
        deep = {"a": deep}
    try:
        canonical_json(deep)
    except FhirValidationError:
        raise
    except Exception as exc:
        assert str(exc).endswith("JSON nested too deeply"), exc
    else:
        raise AssertionError("deep mapping was written")
    print("ok")
    """
)


def test_deep_json_is_refused_with_a_raised_recursion_limit() -> None:
    """Decoding and canonical writing both stop at a fixed depth."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
