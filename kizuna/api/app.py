"""The FastAPI application: :func:`create_app` wires settings, the services' context, sessions,
the error mapping and the routers.

``create_app(settings)`` opens the chain connection, the content store and the database when
the app starts (lifespan) and closes them when it stops; ``create_app(settings, ctx=...)`` serves
an already open context (tests, the benchmark) and leaves closing it to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from starlette.routing import BaseRoute

from kizuna import __version__
from kizuna.api import errors, limits
from kizuna.api.auth import SessionStore, SiweExpectations
from kizuna.api.deps import ApiState
from kizuna.api.readworkers import ReadWorkers
from kizuna.api.routes import auth as auth_routes
from kizuna.api.routes import system
from kizuna.background import PeriodicTask
from kizuna.config import Settings
from kizuna.errors import KizunaError
from kizuna.services.context import ServiceContext, close_context, open_context
from kizuna.types import Address, checksum_address

log = logging.getLogger("kizuna.api")

DESCRIPTION = """\
Kizuna: a personal health record the patient owns. Consent lives on Ethereum; records are
encrypted on the patient's side, so this service sees only envelopes (ciphertext + capsule) and
answers only ciphertext and capsule fragments. Sign in with Ethereum (`GET /auth/nonce`,
`POST /auth/login`), then send `Authorization: Bearer <token>`.
Errors share one body: `{"error": {"kind", "message", "field"?, "reason"?}}`.
"""


def _wards(ctx: ServiceContext) -> Callable[[Address], list[Address]]:
    """Patients who appointed ``guardian`` and whose appointment is live (index at the head)."""

    def wards(guardian: Address) -> list[Address]:
        head = ctx.index.index.sync()
        return [g.patient for g in ctx.index.index.wards_of(guardian, at=head)]

    return wards


def _state(settings: Settings, ctx: ServiceContext) -> ApiState:
    from kizuna.chain.relayer import Relayer
    from kizuna.chain.signers import LocalKeySigner
    from kizuna.receipts.anchorer import Anchorer
    from kizuna.services.quotas import GasBudget

    relayer = (Relayer(ctx.chain, LocalKeySigner(settings.relayer_key.get_secret_value()),
                       budget=GasBudget(ctx.db, per_day=settings.relayer_gas_per_day))
               if settings.relayer_key is not None else None)
    anchor_signer = ctx.anchor_signer
    if anchor_signer is None and settings.anchorer_key is not None:
        anchor_signer = LocalKeySigner(settings.anchorer_key.get_secret_value())
    anchorer = (Anchorer(db=ctx.db, chain=ctx.chain, signer=anchor_signer,
                         interval_s=settings.anchor_interval_s)
                if anchor_signer is not None else None)
    return ApiState(
        settings=settings,
        ctx=ctx,
        sessions=SessionStore(ctx.db, key=settings.session_key()),
        siwe=SiweExpectations(domain=settings.siwe_domain, uri=settings.siwe_uri,
                              chain_id=ctx.chain.chain_id,
                              max_age=timedelta(seconds=settings.siwe_max_age_s),
                              nonce_ttl=timedelta(seconds=settings.siwe_nonce_ttl_s)),
        session_ttl=timedelta(seconds=settings.session_ttl_s),
        ctx_wards=_wards(ctx),
        relayer=relayer,
        anchorer=anchorer,
    )


def _node_origins(app: FastAPI, settings: Settings) -> Callable[[], Sequence[str]] | None:
    """The origins of the proxy nodes ``settings.proxy_registry`` lists (read through the
    app's chain, cached), for the page's connect-src; ``None`` without a registry."""
    if settings.proxy_registry is None:
        return None
    from kizuna.chain.agents.proxies import ProxyRegistryAgent, RegisteredOrigins

    registry = settings.proxy_registry
    made: list[RegisteredOrigins] = []

    def origins() -> Sequence[str]:
        state = getattr(app.state, "kizuna", None)
        if state is None:  # not started yet: nothing but this API
            return ()
        if not made:
            made.append(RegisteredOrigins(ProxyRegistryAgent(state.ctx.chain,
                                                             checksum_address(registry))))
        return made[0].origins()

    return origins


def _background_workers(settings: Settings, context: ServiceContext,
                        state: ApiState) -> list[PeriodicTask]:
    """Start the service's background work; the list is stopped in reverse order."""
    # The follower (deletes the key fragments of every grant or emergency access that ended
    # on chain, whoever ended it) and the anchorer run once per cluster: the instances sharing
    # this database elect a leader (kizuna.services.leader) that runs them, and another takes
    # over within one follow interval when it dies.
    from kizuna.background import sweep_interval
    from kizuna.services.batches import StagedSweeper
    from kizuna.services.follower import IndexFollower
    from kizuna.services.leader import ClusterLeader, election_for
    from kizuna.services.uploads import UploadSweeper
    from kizuna.storage.gc import StoreCollector

    follower = IndexFollower(context, interval_s=settings.follow_interval_s)
    leader = ClusterLeader(election_for(context.db),
                           [follower] + ([state.anchorer] if state.anchorer else []),
                           interval_s=settings.follow_interval_s)
    if state.anchorer is not None and leader.election.try_lead():
        # Finish what a previous run left (a batch made but not anchored, receipts served
        # just before a restart) before serving, then keep anchoring on the schedule.
        try:
            state.anchorer.run_once()
        except KizunaError as exc:
            log.warning("anchoring at start-up failed (will retry): %s", exc)
    workers: list[PeriodicTask] = [
        leader,
        StoreCollector(context.store, interval_s=settings.store_gc_interval_s,
                       grace_s=settings.store_gc_grace_s),  # refused uploads' blocks
        StagedSweeper(context, ttl_s=settings.staged_ttl_s,  # abandoned imports
                      interval_s=sweep_interval(settings.staged_ttl_s)),
        UploadSweeper(context, ttl_s=settings.staged_ttl_s,  # abandoned uploads
                      interval_s=sweep_interval(settings.staged_ttl_s)),
    ]
    for worker in workers:
        worker.start()
    return workers


def _service_routes() -> list[BaseRoute]:
    from kizuna.api.routes import (
        auditor,
        care,
        data_requests,
        patient,
        provider,
        shl,
        uploads,
        wallet,
    )

    # Routes are matched in order: the provider's, with the read route, the hottest, first.
    return [
        *provider.router.routes,
        *patient.router.routes,
        *uploads.router.routes,  # chunked uploads (kizuna.services.uploads)
        *auditor.router.routes,
        *wallet.router.routes,
        *care.router.routes,
        *data_requests.router.routes,  # kizuna.services.data_requests
        *shl.router.routes,  # SMART Health Links (kizuna.sharing.links)
    ]


def create_app(settings: Settings, *, ctx: ServiceContext | None = None,
               with_services: bool = True) -> FastAPI:
    """The Kizuna API for ``settings``; serves ``ctx`` when given, else opens its own.

    ``with_services=False`` mounts only the sign-in and system routes (their tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ctx is None
        context = open_context(settings) if ctx is None else ctx
        state = _state(settings, context) if owned else app.state.kizuna
        app.state.kizuna = state
        state.read_workers = ReadWorkers(settings.read_threads)  # one per run of the app
        workers = _background_workers(settings, context, state)
        try:
            yield
        finally:
            for worker in reversed(workers):  # the leader stops the follower and the anchorer
                worker.stop()
            state.read_workers.shutdown()
            if owned:
                close_context(context)

    # The routers' routes are served as they are, not through include_router: FastAPI (since
    # 0.137) builds an included router's routes again (their dependencies and model fields) on
    # the first request that reaches it, which the API process paid for at its first /health.
    # Included without a prefix, tags or dependencies of their own, the routes are already the
    # ones it would serve (the app's dependency_overrides, unused here, do not reach them).
    routes = [*(_service_routes() if with_services else []), *system.router.routes,
              *auth_routes.router.routes]
    app = FastAPI(title="Kizuna", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, routes=routes)
    if ctx is not None:
        app.state.kizuna = _state(settings, ctx)
    errors.install(app)
    limits.install(app, settings)  # Host, body size and depth: before any route parses
    from kizuna.errors import NotFoundError
    from kizuna.web import static
    # the web app, from this origin (its CSP lets it talk to this API only, and to the
    # threshold proxy nodes the deployment's ProxyRegistry lists: docs/proxies.md)
    static.install(app, not_found=lambda name: errors.error_response(
        NotFoundError(f"no web asset named {name!r}")), connect=_node_origins(app, settings))
    if settings.benchmark_baseline and settings.environment == "development":
        from kizuna.api.routes import baseline

        app.include_router(baseline.router)
    _document_validation_errors(app)
    return app


def _document_validation_errors(app: FastAPI) -> None:
    """FastAPI documents its default ``HTTPValidationError`` body for 422 on routes that do not
    list 422 themselves; this API answers every 422 with ``ErrorBody`` (kizuna.api.errors), so
    the document is corrected to say so. The routes name ErrorBody by reference
    (``errors.error_responses``), so its schema is added to the components here."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for item in document.get("paths", {}).values():
            for operation in item.values():
                answer = operation.get("responses", {}).get("422")
                if answer is None:
                    continue
                answer["description"] = "Invalid input: the field and the reason"
                answer["content"] = {"application/json": {
                    "schema": {"$ref": errors.ERROR_BODY_REF}}}
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorBody" not in schemas:
            # written as FastAPI writes the rest of the document: None values left out
            body = jsonable_encoder(errors.ErrorBody.model_json_schema(
                ref_template="#/components/schemas/{model}"), exclude_none=True)
            schemas.update(body.pop("$defs"))
            schemas["ErrorBody"] = body
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app"]
