"""Research sharing with consent (issue 16, part 2): studies registered on-chain by verified
researchers, and the de-identified copies patients share with them (docs/research.md)."""
