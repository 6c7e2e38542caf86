"""The benchmark baseline: the same ciphertext bytes served with NO access check, NO
re-encryption and NO receipt. Mounted only when ``benchmark_baseline`` is on, which
:class:`~kizuna.config.Settings` refuses outside ``environment=development`` — it can never be
on in production. ``benchmarks/service.py`` compares the real read path against it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from kizuna.api.convert import unhex
from kizuna.api.deps import State
from kizuna.api.schemas import Hex32

router = APIRouter(prefix="/_benchmark", tags=["benchmark"], include_in_schema=False)


@router.get("/records/{record_id}")
def unchecked_record(record_id: Hex32, state: State) -> Response:
    """The envelope of a record, whole, from the store: what a read costs without its checks."""
    assert state.settings.environment == "development" and state.settings.benchmark_baseline
    info = state.ctx.records.get(unhex("record_id", record_id))  # type: ignore[arg-type]
    with state.ctx.store.get(info.cid) as stream:
        return Response(stream.read(), media_type="application/octet-stream")
