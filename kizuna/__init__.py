"""Kizuna: a personal health record the patient owns.

Consent lives on Ethereum, encrypted records on IPFS; see docs/ and the README.
"""

from kizuna._limits import restore_recursion_limit
from kizuna.errors import KizunaError

restore_recursion_limit()  # before any other Kizuna module imports py_ecc or py-evm

__version__ = "0.1.0"

__all__ = ["KizunaError", "__version__"]
