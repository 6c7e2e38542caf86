"""The access decision: a VerifiedGrant is made only from a live on-chain grant."""
