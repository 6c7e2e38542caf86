"""A threshold proxy node (docs/proxies.md): its server (``server``: ``kizuna proxy serve``) and
the patient's and provider's side of talking to a set of nodes (``client``).

Apart from :mod:`kizuna.proxy` (kfrags, the m-of-n binding and combining rules, which the service
itself uses): a node *runs* the service's read path and the client *uses* the provider client,
so this package sits above both, with no arrow back.
"""
