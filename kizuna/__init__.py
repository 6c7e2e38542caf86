"""Kizuna: a personal health record the patient owns.

Consent lives on Ethereum, encrypted records on IPFS; see docs/ and the README.
"""

from kizuna.errors import KizunaError

__version__ = "0.1.0"

__all__ = ["KizunaError", "__version__"]
