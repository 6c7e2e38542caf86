"""Read receipts: the provider's signed request, the receipt store, Merkle batches, anchoring."""
