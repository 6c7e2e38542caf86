"""Keys and proxy re-encryption (Umbral), wallet-derived keys, blinded scopes, receipts.

Modules (import them directly; this package imports nothing on its own):

* :mod:`kizuna.crypto.pre` -- Umbral keys, capsules, key and capsule fragments, re-encryption
  (only under a :class:`~kizuna.access.grant.VerifiedGrant`);
* :mod:`kizuna.crypto.wallet_keys` -- a participant's Umbral keys and scope key derived from one
  EIP-712 wallet signature;
* :mod:`kizuna.crypto.scopes` -- FHIR-style scope labels and their per-patient blinding;
* :mod:`kizuna.crypto.commitment` -- the on-chain commitment of an envelope (SHA-256);
* :mod:`kizuna.crypto.secret` -- the base of every secret-holding type (no print, pickle, hash).

Merkle trees (read receipts, record batches) are not here but in :mod:`kizuna.merkle` and
:mod:`kizuna.batch`: the chain's event index checks batch manifests with them, and this
package depends on :mod:`kizuna.access` (the re-encryption gate), which depends on the chain.

The envelope format that uses these lives in :mod:`kizuna.storage.envelope`; docs/keys.md and
docs/envelope.md describe both.
"""
