"""The proxy's state: key fragments patients handed over for their grants."""
