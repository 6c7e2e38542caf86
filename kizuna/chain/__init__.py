"""Everything that talks to Ethereum: artifacts, deployments, agents, signers, event index."""
