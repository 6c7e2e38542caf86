"""The API's OpenAPI document as JSON, from the code: ``python -m kizuna.api.openapi [FILE]``.

The web app's wire types (``web/src/api/schema.d.ts``) are generated from this document
(``scripts/web-build``), and ``tests/web/test_web_build.py`` fails when either is stale, so the
page, the Python client and the routes cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def document() -> dict[str, Any]:
    """The OpenAPI document of every route a deployment can serve (development settings, so no
    secret is needed to build it; the routes do not depend on the environment)."""
    from kizuna.api.app import create_app
    from kizuna.config import Settings
    return create_app(Settings.load(environment="development")).openapi()


def dumps() -> str:
    """The document as stable, sorted JSON text (one trailing newline)."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = dumps()
    if args:
        with open(args[0], "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
