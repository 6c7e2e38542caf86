"""The web app as shipped: its build and generated types are current, and the API serves it
with the headers the trust model needs.

* ``web/openapi.json`` is the API's OpenAPI document as the code makes it;
* ``web/src/api/schema.ts`` is generated from it (openapi-typescript), so the page's wire types
  cannot drift from ``kizuna/api/schemas.py``;
* ``kizuna/web/dist`` (committed, served by the API, shipped in the wheel) is what ``vite build``
  makes of ``web/`` now.
Any of them stale: run ``scripts/web-build`` and commit.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse

from kizuna.api import openapi
from kizuna.web import static

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
STALE = "stale: run scripts/web-build and commit the result"


def _bin(name: str) -> str:
    path = WEB / "node_modules" / ".bin" / name
    assert path.exists(), "web/node_modules is missing: `. scripts/bootstrap.sh` installs it"
    return str(path)


def _env() -> dict[str, str]:
    venv_bin = ROOT / ".venv" / "bin"
    return {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}


def test_openapi_document_is_current() -> None:
    assert (WEB / "openapi.json").read_text(encoding="utf-8") == openapi.dumps(), \
        f"web/openapi.json is {STALE}"


@pytest.mark.node
def test_wire_types_are_generated_from_the_document(tmp_path: Path) -> None:
    out = tmp_path / "schema.ts"
    subprocess.run([_bin("openapi-typescript"), "openapi.json", "-o", str(out)], cwd=WEB,
                   env=_env(), check=True, capture_output=True, timeout=120)
    assert out.read_text() == (WEB / "src" / "api" / "schema.ts").read_text(), \
        f"web/src/api/schema.ts is {STALE}"


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.node
def test_committed_build_is_current(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    # --bypass-lock: into a folder of its own, beside the bench build another worker may be
    # running (benchmarks/web.py build_bench says why Vite would refuse it).
    subprocess.run([_bin("vite"), "build", "--outDir", str(out), "--emptyOutDir",
                    "--logLevel", "error", "--bypass-lock"], cwd=WEB, env=_env(), check=True,
                   capture_output=True, timeout=300)
    assert _tree(out) == _tree(static.DIST), f"kizuna/web/dist is {STALE}"
    _, mismatch, errors = filecmp.cmpfiles(out, static.DIST, _tree(out), shallow=False)
    assert not mismatch and not errors, f"{mismatch or errors} differ: kizuna/web/dist is {STALE}"


# --- serving ---------------------------------------------------------------------------------


def _served(root: Path) -> TestClient:
    app = FastAPI()
    static.install(app, root=root, not_found=lambda name: JSONResponse(
        {"error": {"kind": "NotFoundError", "message": f"no web asset named {name!r}"}},
        status_code=404))
    return TestClient(app)


@pytest.fixture
def fake_build(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>k</title>")
    (root / "assets" / "index-abc123.js").write_text("export {}")
    (root / "assets" / "umbral-abc.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


def test_page_has_a_strict_policy_and_is_revalidated(fake_build: Path) -> None:
    answer = _served(fake_build).get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-cache"
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    # the decryption workers: same-origin module scripts only, never a blob: worker
    assert "worker-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval'" not in csp.replace("wasm-unsafe-eval'", "")
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_hashed_assets_are_immutable_with_their_types(fake_build: Path) -> None:
    client = _served(fake_build)
    js = client.get("/assets/index-abc123.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in js.headers["cache-control"]
    wasm = client.get("/assets/umbral-abc.wasm")
    assert wasm.headers["content-type"] == "application/wasm"  # streaming compile needs it
    assert client.head("/assets/index-abc123.js").status_code == 200


@pytest.mark.parametrize("path", ["/assets/missing.js", "/assets/..%2Fsecret.txt",
                                  "/assets/%2E%2E%2F%2E%2E%2Fsecret.txt", "/assets/"])
def test_only_built_files_are_served(fake_build: Path, path: str) -> None:
    answer = _served(fake_build).get(path)
    assert answer.status_code == 404
    assert "not for the web" not in answer.text


def test_without_a_build_the_page_says_how_to_make_one(tmp_path: Path) -> None:
    answer = _served(tmp_path / "nothing").get("/")
    assert answer.status_code == 503
    assert "scripts/web-build" in answer.text


def test_the_shipped_build_is_complete() -> None:
    build = static.WebBuild.load()
    assert build is not None, "kizuna/web/dist is missing: run scripts/web-build"
    html = build.index.read_text()
    for name in build.assets:
        if name.endswith((".js", ".css")) and name.startswith("index-"):
            assert f"/assets/{name}" in html
    assert any(n.endswith(".wasm") for n in build.assets), "no Umbral WebAssembly in the build"


def test_a_rebuild_is_served_without_a_restart(fake_build: Path) -> None:
    client = _served(fake_build)
    assert client.get("/assets/index-abc123.js").status_code == 200
    (fake_build / "assets" / "index-abc123.js").unlink()
    (fake_build / "assets" / "index-def456.js").write_text("export {}")
    index = fake_build / "index.html"
    index.write_text('<!doctype html><script type="module" src="/assets/index-def456.js">')
    os.utime(index, (index.stat().st_atime, index.stat().st_mtime + 5))
    assert "index-def456" in client.get("/").text
    assert client.get("/assets/index-def456.js").status_code == 200
    assert client.get("/assets/index-abc123.js").status_code == 404


def test_every_shipped_package_is_in_the_licence_file() -> None:
    shipped = (static.DIST / "assets" / "third-party-licences.txt").read_text(encoding="utf-8")
    listed = (ROOT / "THIRD_PARTY_LICENSES.md").read_text(encoding="utf-8")
    rows = [line.split() for line in shipped.splitlines()[3:] if line.strip()]
    assert len(rows) >= 5, shipped  # preact, uplot, viem, umbral-pre, ... are in the bundles
    for name, _version, licence in rows:
        mentioned = [line for line in listed.splitlines() if f"`{name}`" in line]
        assert mentioned, f"{name} ({licence}) is shipped but not in THIRD_PARTY_LICENSES.md"
        assert any(licence in line for line in mentioned), \
            f"{name} is shipped under {licence}; THIRD_PARTY_LICENSES.md says otherwise"
