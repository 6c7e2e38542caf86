"""The participant's side of Kizuna: keys, encryption, signing and decryption on their machine.

:class:`~kizuna.client.patient.PatientClient` and :class:`~kizuna.client.provider.ProviderClient`
use the service in-process (``ServiceContext``); nothing secret leaves this package.
"""
