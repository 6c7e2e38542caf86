"""``python -m kizuna.cli``: the same entry point as the ``kizuna`` console script."""

from kizuna.cli.main import main

main()
