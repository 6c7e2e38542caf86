"""One agent per Kizuna contract, each with a ``# Calls`` and a ``# Transactions`` part."""

from kizuna.chain.agents.access_log import AccessLogAgent
from kizuna.chain.agents.ledger import ConsentLedgerAgent
from kizuna.chain.agents.registry import ProviderRegistryAgent

__all__ = ["AccessLogAgent", "ConsentLedgerAgent", "ProviderRegistryAgent"]
