"""Keys and proxy re-encryption (Umbral), wallet-derived keys, blinded scopes, receipts."""
