"""The ``kizuna`` command."""

from kizuna.cli.main import main

__all__ = ["main"]
