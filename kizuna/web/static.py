"""Serving the built web app from the API's origin: ``/`` is the page, ``/assets/<name>`` its
hashed bundles (JavaScript, CSS, WebAssembly, images).

Why from the API's origin: the page's Content-Security-Policy can then say ``connect-src 'self'``
(the page talks to this service and nothing else; the wallet talks to the chain itself), and a
session token never crosses origins. The one exception: a deployment with threshold proxy nodes
(docs/proxies.md) lets the page fetch from the nodes its ProxyRegistry lists, and only those.

Caching: asset names carry a content hash (Vite), so they are ``immutable`` for a year; the page
itself is ``no-cache`` (revalidated each load), so a new build is picked up at the next reload.
Only files listed at start-up are served (no path is ever joined from the request).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

DIST = Path(__file__).parent / "dist"
"""Where ``scripts/web-build`` writes the build (committed)."""


def content_security_policy(connect: Sequence[str] = ()) -> str:
    """The page's policy; ``connect``: origins it may fetch from besides this API (the
    threshold proxy nodes the deployment's ProxyRegistry lists, which a provider's page reads
    through directly, docs/proxies.md; each already reduced to a checked ``scheme://host:port``
    by ``kizuna.chain.agents.proxies.node_origin``)."""
    return "; ".join([
        "default-src 'none'",
        # WebAssembly (Umbral) compiles under 'wasm-unsafe-eval'; no other eval, no inline script.
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        # Decrypted images and documents are shown from blob: URLs made in the page.
        "img-src 'self' blob: data:",
        "frame-src blob:",
        "object-src 'none'",
        "font-src 'self'",
        " ".join(["connect-src 'self'", *connect]),
        # The decryption workers (web/src/workers) are module scripts of this origin; no worker
        # from a blob: URL (code made in the page) may run.
        "worker-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


CONTENT_SECURITY_POLICY = content_security_policy()
"""The page may load code and styles only from this origin and talk only to this API (and, with
threshold proxies, to the registered nodes: :func:`content_security_policy`)."""

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".wasm": "application/wasm", ".svg": "image/svg+xml", ".json": "application/json",
          ".html": "text/html; charset=utf-8", ".png": "image/png", ".ico": "image/x-icon",
          ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8"}


@dataclass(frozen=True)
class WebBuild:
    """The files of one build: the page and its assets by name."""

    index: Path
    assets: dict[str, Path]

    @classmethod
    def load(cls, root: Path = DIST) -> WebBuild | None:
        """The build under ``root``, or None when there is none (a checkout before its first
        ``scripts/web-build``)."""
        index = root / "index.html"
        if not index.is_file():
            return None
        folder = root / "assets"
        assets = ({p.name: p for p in folder.iterdir() if p.is_file()}
                  if folder.is_dir() else {})
        return cls(index=index, assets=assets)


def _mtime(root: Path) -> float:
    try:
        return (root / "index.html").stat().st_mtime
    except OSError:
        return 0.0


def _media_type(path: Path) -> str:
    return _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or \
        "application/octet-stream"


def install(app: FastAPI, *, not_found: Callable[[str], Response],
            root: Path = DIST, connect: Callable[[], Sequence[str]] | None = None) -> None:
    """Serve the web app at ``/`` and ``/assets/<name>`` (left out of the OpenAPI document);
    ``not_found(name)`` answers an unknown asset (the API's error body, from its one home).
    A rebuild while the API runs (``scripts/web-build`` beside ``kizuna up``) is picked up at
    the next page load: the listing follows the page's modification time. ``connect()``: the
    origins the page may fetch from besides this API, asked at each page load (in a thread: it
    may read the chain)."""
    current: list[tuple[float, WebBuild | None]] = [(_mtime(root), WebBuild.load(root))]

    def build() -> WebBuild | None:
        stamp = _mtime(root)
        if stamp != current[0][0]:
            current[0] = (stamp, WebBuild.load(root))
        return current[0][1]

    async def page(request: Request) -> Response:
        found = build()
        if found is None:
            return PlainTextResponse(
                "The web app is not built in this installation: run scripts/web-build.",
                status_code=503, headers={"Cache-Control": "no-cache"})
        headers = PAGE_HEADERS
        if connect is not None:
            from starlette.concurrency import run_in_threadpool

            extra = await run_in_threadpool(connect)
            if extra:
                headers = {**PAGE_HEADERS,
                           "Content-Security-Policy": content_security_policy(extra)}
        return FileResponse(found.index, media_type=_TYPES[".html"], headers=headers)

    async def asset(request: Request) -> Response:
        name = str(request.path_params["name"])
        found = current[0][1]
        path = found.assets.get(name) if found is not None else None
        if path is None:
            return not_found(name)
        return FileResponse(path, media_type=_media_type(path), headers=ASSET_HEADERS)

    app.router.routes.append(Route("/", page, methods=["GET", "HEAD"], include_in_schema=False))
    app.router.routes.append(Route("/assets/{name}", asset, methods=["GET", "HEAD"],
                                   include_in_schema=False))


__all__ = ["CONTENT_SECURITY_POLICY", "DIST", "WebBuild", "content_security_policy", "install"]
