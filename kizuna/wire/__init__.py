"""The wire models: the plain types that cross the participant ↔ service seam.

The service's use cases (``kizuna.services``) return them, the API's routes serialise them, and
the Python client (``kizuna.client``) rebuilds them from the API's answers. They live here, once,
so that a client imports neither the service nor what it stands on: no module of this package
imports SQLAlchemy, web3, FastAPI, ``kizuna.services``, ``kizuna.db``, ``kizuna.api`` or the
event index (tests/test_package_graph.py and tests/wire check it).

One module per thing carried: :mod:`~kizuna.wire.records` (stored records, upload limits),
:mod:`~kizuna.wire.batches` (staging and batch registration), :mod:`~kizuna.wire.care` (inbox
keys and care messages), :mod:`~kizuna.wire.consent` (grants, revocations, confirmed actions),
:mod:`~kizuna.wire.inbox` (inbox items, read history), :mod:`~kizuna.wire.onchain` (wallet
transactions), :mod:`~kizuna.wire.reads` (provider reads and refused reads),
:mod:`~kizuna.wire.data_requests` (data requests: their fields, commitments, states and answer
rules, which the client checks before it sends anything on-chain and the service again).
"""
