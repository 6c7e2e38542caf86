"""Run the API with uvicorn (uvloop + httptools when installed), on 127.0.0.1 by default.

:func:`serve` blocks until the process is told to stop (SIGINT / SIGTERM: uvicorn finishes the
requests in flight, then the app's lifespan closes the chain, store and database).
"""

from __future__ import annotations

import logging

import uvicorn

from kizuna.api.app import create_app
from kizuna.config import Settings
from kizuna.services.context import ServiceContext, close_context, open_context


def uvicorn_config(settings: Settings, *, ctx: ServiceContext | None = None,
                   log_level: str = "info") -> uvicorn.Config:
    """The uvicorn configuration for ``settings`` (one worker: state lives in the database, so
    more capacity means more processes on the same database, each started like this one)."""
    return uvicorn.Config(
        create_app(settings, ctx=ctx),
        host=settings.api_host,
        port=settings.api_port,
        loop="auto",
        http="auto",
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=1024,
    )


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Serve until stopped. The chain, store and database are opened first, so a node that
    does not answer or a bad deployment is one clear ``KizunaError`` before anything listens."""
    logging.getLogger("kizuna").setLevel(log_level.upper())
    ctx = open_context(settings)
    try:
        uvicorn.Server(uvicorn_config(settings, ctx=ctx, log_level=log_level)).run()
    finally:
        close_context(ctx)


__all__ = ["serve", "uvicorn_config"]
