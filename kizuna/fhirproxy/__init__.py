"""A read-only FHIR R4 REST server on the provider's machine over its granted Kizuna records.

``kizuna provider fhir-proxy`` runs it: the provider's key stays on the provider's machine; the
proxy asks the Kizuna service which records live grants allow, reads them (signed requests,
receipts in the service, local decryption), keeps them in memory only, drops whatever is no
longer granted, and answers ordinary FHIR clients on 127.0.0.1. docs/fhir-proxy.md describes it.
"""

from kizuna.fhirproxy.app import FHIR_JSON, capability_statement, create_app
from kizuna.fhirproxy.cache import CachedResource, GrantedCache, Snapshot, minimal_patient
from kizuna.fhirproxy.search import SearchError, parse_query, search
from kizuna.fhirproxy.server import DEFAULT_PORT, ProxyServer
from kizuna.fhirproxy.source import GrantedSource

__all__ = [
    "DEFAULT_PORT",
    "FHIR_JSON",
    "CachedResource",
    "GrantedCache",
    "GrantedSource",
    "ProxyServer",
    "SearchError",
    "Snapshot",
    "capability_statement",
    "create_app",
    "minimal_patient",
    "parse_query",
    "search",
]
