"""Pull a patient's records from a FHIR R4 server, for ``kizuna patient import --from-fhir``.

:class:`FhirPuller` reads the server's CapabilityStatement (``GET [base]/metadata``); when it
lists the ``everything`` operation on Patient, one ``Patient/[id]/$everything`` (``_type``,
``_since``) is read, else one search per resource type (``[type]?patient=[id]``, with
``_lastUpdated=ge[since]``; the Patient itself by ``_id``), each following the Bundle's
``next`` links. Everything is fetched and checked before anything is imported, so a failure
(server down, 401/403, an answer that is not FHIR JSON, a ``next`` link seen before or on
another origin, a page over :data:`MAX_PAGE_BYTES`) registers nothing.

A bearer token, when the server needs one, is read from the environment variable
:data:`TOKEN_ENV` (never from the command line, never printed); it is sent only to the
server's own origin (a ``next`` link elsewhere is refused).

Each resource keeps where it came from: ``meta.source`` = ``[base]/[type]/[id]/_history/
[versionId]`` (the server's ``meta.versionId``; without one, ``#sha256-<digest of the
resource>`` after ``[base]/[type]/[id]``), and its record id is ``HMAC-SHA256(import id key,
"kizuna-fhir-pull" || that source)``. So the same version pulled again names the same record
and the import pipeline skips it as registered; a new version on the server is a new record,
imported once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from kizuna.client.importer import ImportSource
from kizuna.errors import AccessDenied, InputError, StoreProtocolError, StoreUnavailable
from kizuna.storage.fhir.canonical import canonical_json
from kizuna.storage.fhir.importer import ImportedBundle
from kizuna.storage.fhir.validate import validate
from kizuna.tls import http_client
from kizuna.types import RecordId

TOKEN_ENV = "KIZUNA_FHIR_TOKEN"
"""The environment variable holding the FHIR server's bearer token (if it needs one)."""
PAGE_SIZE = 200
"""Resources asked per page (``_count``)."""
MAX_PAGE_BYTES = 64 * 1024 * 1024
"""A page larger than this is refused (a misbehaving server cannot exhaust memory)."""
MAX_PAGES = 10_000
"""Pages followed for one search at most."""
ID_CONTEXT = b"kizuna-fhir-pull\x00"
FHIR_ACCEPT = "application/fhir+json, application/json;q=0.9"


class FhirServerError(StoreProtocolError):
    """A FHIR server answered something that is not what FHIR R4 says (or too much of it)."""


class FhirServerUnreachable(StoreUnavailable):
    """The FHIR server cannot be reached."""


@dataclass(frozen=True, slots=True)
class PulledResource:
    resource: dict[str, Any]
    """As served, with ``meta.source`` set to :attr:`source`."""
    resource_type: str
    id: str
    version: str
    source: str


@dataclass(slots=True)
class PullResult:
    base: str
    patient_id: str
    resources: list[PulledResource] = field(default_factory=list)
    pages: int = 0
    everything: bool = False
    """Whether ``Patient/$everything`` was used (else one search per type)."""


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class FhirPuller:
    """Reads one patient's resources from the FHIR server at ``base``."""

    def __init__(self, base: str, *, token: str | None = None, page_size: int = PAGE_SIZE,
                 timeout: float = 60.0, transport: httpx.BaseTransport | None = None) -> None:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError("from-fhir", f"{base!r} is not an http(s) URL of a FHIR server")
        if not 1 <= page_size <= 10_000:
            raise InputError("page-size", "must be between 1 and 10000")
        self.base = base.rstrip("/")
        self.page_size = page_size
        headers = {"Accept": FHIR_ACCEPT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._token_sent = bool(token)
        self._http = http_client(self.base, headers=headers, timeout=timeout,
                                 transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FhirPuller:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- HTTP ---------------------------------------------------------------------------------

    def get(self, url: str) -> dict[str, Any]:
        """``url``'s FHIR JSON resource (errors: module docstring)."""
        if _origin(url) != _origin(self.base):
            raise FhirServerError(f"the server sent a link to another origin ({url}): not "
                                  f"followed (the token is for {self.base} only)")
        try:
            with self._http.stream("GET", url) as answer:
                self._check_status(answer, url)
                kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
                if "json" not in kind:
                    raise FhirServerError(f"{url} answered {kind or 'no content type'}, not "
                                          "FHIR JSON: is this the base URL of a FHIR server?")
                body = bytearray()
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        raise FhirServerError(f"{url} answered more than "
                                              f"{MAX_PAGE_BYTES:,} bytes in one page "
                                              "(try a smaller --page-size)")
        except httpx.TransportError as exc:
            raise FhirServerUnreachable(f"cannot reach the FHIR server at {self.base}: "
                                        f"{exc}") from None
        try:
            data = json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError):
            raise FhirServerError(f"{url} answered something that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise FhirServerError(f"{url} answered JSON that is not a FHIR resource "
                                  "(no resourceType)")
        return data

    def _check_status(self, answer: httpx.Response, url: str) -> None:
        if answer.status_code in (401, 403):
            if self._token_sent:
                why = (f"the token in ${TOKEN_ENV} was refused (HTTP {answer.status_code}): "
                       "is it right, and still valid?")
            else:
                why = (f"the server needs a bearer token (HTTP {answer.status_code}): put it "
                       f"in ${TOKEN_ENV}")
            raise AccessDenied(f"{self.base}: {why}")
        if answer.status_code != 200:
            answer.read()
            detail = ""
            try:
                issues = answer.json().get("issue") or []
                detail = "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues)
            except (ValueError, AttributeError):
                pass
            raise FhirServerError(f"{url} answered HTTP {answer.status_code}"
                                  + (f": {detail}" if detail else ""))

    def pages(self, url: str) -> Iterator[dict[str, Any]]:
        """The Bundles of a search: ``url``'s, then each ``next`` link's (no URL twice)."""
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen:
                raise FhirServerError(f"the server's next link leads back to a page already "
                                      f"read ({next_url}): stopped")
            if len(seen) >= MAX_PAGES:
                raise FhirServerError(f"more than {MAX_PAGES} pages for {url}: stopped")
            seen.add(next_url)
            page = self.get(next_url)
            if page["resourceType"] != "Bundle":
                raise FhirServerError(f"{next_url} answered a {page['resourceType']}, not a "
                                      "Bundle")
            yield page
            links = [link.get("url") for link in page.get("link") or ()
                     if isinstance(link, dict) and link.get("relation") == "next"]
            next_url = urljoin(next_url, links[0]) if links and isinstance(links[0], str) \
                else None

    # -- the pull -----------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        statement = self.get(f"{self.base}/metadata")
        if statement["resourceType"] != "CapabilityStatement":
            raise FhirServerError(f"{self.base}/metadata answered a "
                                  f"{statement['resourceType']}, not a CapabilityStatement")
        return statement

    def pull(self, *, patient_id: str | None = None, types: Sequence[str] | None = None,
             since: str | None = None, everything: bool | None = None,
             on_page: Callable[[int, int], None] | None = None) -> PullResult:
        """Every resource of the patient (of ``types``; updated on or after ``since``).
        ``everything``: use ``Patient/$everything`` (``None``: when the server offers it;
        ``False``: a search per type). ``on_page(pages, resources)`` after each page."""
        statement = self.capabilities()
        resources = {str(r.get("type")): r for rest in statement.get("rest") or ()
                     if isinstance(rest, dict) and rest.get("mode", "server") == "server"
                     for r in rest.get("resource") or () if isinstance(r, dict)}
        patient_id = patient_id or self._only_patient()
        result = PullResult(base=self.base, patient_id=patient_id)
        offered = any(isinstance(op, dict) and op.get("name") == "everything"
                      for op in resources.get("Patient", {}).get("operation") or ())
        if everything and not offered:
            raise FhirServerError(f"{self.base} does not offer Patient/$everything "
                                  "(its CapabilityStatement)")
        if offered if everything is None else everything:
            params = [("_count", str(self.page_size))]
            if types:
                params.append(("_type", ",".join(types)))
            if since:  # an instant (R4): a date alone means its first moment, UTC
                params.append(("_since", since if "T" in since else f"{since}T00:00:00Z"))
            urls = [f"{self.base}/Patient/{patient_id}/$everything?{urlencode(params)}"]
            result.everything = True
        else:
            wanted = list(types) if types else sorted(
                name for name, r in resources.items()
                if name == "Patient" or any(isinstance(p, dict) and p.get("name") == "patient"
                                            for p in r.get("searchParam") or ()))
            urls = []
            for name in wanted:
                params = ([("_id", patient_id)] if name == "Patient"
                          else [("patient", patient_id)])
                params.append(("_count", str(self.page_size)))
                if since:
                    params.append(("_lastUpdated", f"ge{since}"))
                urls.append(f"{self.base}/{name}?{urlencode(params)}")
        kept: dict[tuple[str, str], PulledResource] = {}
        for url in urls:
            for page in self.pages(url):
                result.pages += 1
                for entry in page.get("entry") or ():
                    one = self._pulled(entry, types)
                    if one is not None:
                        kept[(one.resource_type, one.id)] = one
                if on_page is not None:
                    on_page(result.pages, len(kept))
        result.resources = list(kept.values())
        return result

    def _only_patient(self) -> str:
        page = next(self.pages(f"{self.base}/Patient?_count=2"))
        ids = [str(e["resource"].get("id")) for e in page.get("entry") or ()
               if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        if len(ids) != 1:
            raise InputError("patient-id", f"the server at {self.base} holds "
                             f"{'no' if not ids else 'more than one'} patient: name one "
                             "with --patient-id")
        return ids[0]

    def _pulled(self, entry: Any, types: Sequence[str] | None) -> PulledResource | None:
        if not isinstance(entry, dict):
            raise FhirServerError("a Bundle entry that is not a JSON object")
        resource = entry.get("resource")
        if (entry.get("search") or {}).get("mode") == "outcome" or not isinstance(resource,
                                                                                  dict):
            return None  # an OperationOutcome about the search, not the patient's data
        kind, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(kind, str) or not isinstance(rid, str) or not rid:
            raise FhirServerError(f"a Bundle entry's resource has no type or id "
                                  f"({entry.get('fullUrl')})")
        if types and kind not in types:
            return None  # an _include'd or $everything's extra: not asked for
        resource = dict(resource)
        meta = dict(resource.get("meta") or {})
        meta.pop("source", None)
        version = meta.get("versionId")
        if isinstance(version, str) and version:
            source = f"{self.base}/{kind}/{rid}/_history/{version}"
        else:  # a server without versions: the content is the version
            version = "sha256-" + hashlib.sha256(canonical_json(
                {**resource, "meta": meta})).hexdigest()
            source = f"{self.base}/{kind}/{rid}#{version}"
        meta["source"] = source
        resource["meta"] = meta
        return PulledResource(resource=resource, resource_type=kind, id=rid,
                              version=str(version), source=source)


def pulled_record_id(key: bytes, source: str) -> RecordId:
    """The record id of the resource version at ``source`` (module docstring)."""
    return RecordId(hmac.new(key, ID_CONTEXT + source.encode("utf-8"),
                             hashlib.sha256).digest())


def pull_source(pulled: PullResult, id_key: bytes) -> ImportSource:
    """The pulled resources as one import source (validated; references to resources left on
    the server stay as they are), each with its record id."""
    entries = [{"fullUrl": f"{pulled.base}/{p.resource_type}/{p.id}", "resource": p.resource}
               for p in pulled.resources]
    validated = validate({"resourceType": "Bundle", "type": "collection", "entry": entries})
    ids = [pulled_record_id(id_key, p.source) for p in pulled.resources]
    digest = hashlib.sha256(b"".join(bytes(i) for i in ids)).digest()
    return ImportSource(name=pulled.base, digest=digest, records=ImportedBundle(validated.data),
                        record_ids=ids)


def token_from(environ: Mapping[str, str]) -> str | None:
    """The bearer token of :data:`TOKEN_ENV` (``None`` if unset or empty)."""
    return environ.get(TOKEN_ENV) or None


__all__ = [
    "MAX_PAGE_BYTES",
    "PAGE_SIZE",
    "TOKEN_ENV",
    "FhirPuller",
    "FhirServerError",
    "FhirServerUnreachable",
    "PullResult",
    "PulledResource",
    "pull_source",
    "pulled_record_id",
    "token_from",
]
