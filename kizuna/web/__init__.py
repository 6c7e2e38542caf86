"""The web app's built assets (``kizuna/web/dist``, built from ``web/`` by ``scripts/web-build``
and committed, so ``pip install`` users need no Node) and the routes that serve them."""
