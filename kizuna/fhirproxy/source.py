"""Where the proxy's data comes from: the provider's own client of the Kizuna service.

:class:`GrantedSource` is the three calls the proxy needs. :class:`~kizuna.client.provider.
ProviderClient` satisfies it as it is (in-process, or over the API through
:class:`~kizuna.fhirproxy.api_source.ApiProviderSource`): ``records()`` lists what live grants
allow *now* (as of the chain head), ``read()`` signs a read request, has the service check the
grant and re-encrypt, leaves a receipt, and decrypts locally with the provider's key.
"""

from __future__ import annotations

from typing import Protocol

from kizuna.types import Address
from kizuna.wire.records import RecordInfo


class GrantedSource(Protocol):
    """The provider's view of the service (see the module docstring)."""

    @property
    def address(self) -> Address: ...

    def patients(self) -> list[Address]: ...

    def records(self, *, patient: str | None = None,
                content_type: str | None = None) -> list[RecordInfo]: ...

    def read(self, *, patient: str, record_id: bytes) -> bytes: ...


__all__ = ["GrantedSource"]
