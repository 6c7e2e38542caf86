"""The provider registry agent: typed views and transactions of ``ProviderRegistry``."""

from __future__ import annotations

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.types import BlockIdentifier

from kizuna.chain.agents.base import AccessControlAgent, as_bytes32
from kizuna.chain.models import ContractCall, Provider, TxReceipt
from kizuna.chain.signers import Signer
from kizuna.errors import ContractReverted
from kizuna.types import Address

UMBRAL_KEY_LENGTH = 33
"""A compressed secp256k1 point: the form the registry stores Umbral public keys in."""

REGISTRAR_ROLE = keccak(text="KIZUNA_REGISTRAR_ROLE")
"""``ProviderRegistry.REGISTRAR_ROLE`` (the contract's constant), for reading it off the event
index without a call."""


class ProviderRegistryAgent(AccessControlAgent):
    """``ProviderRegistry``: verified providers, their Umbral keys and credential commitments."""

    contract_name = "ProviderRegistry"

    # ========================================================================================
    # Calls
    # ========================================================================================

    def provider_of(self, provider: Address, *,
                    block: BlockIdentifier = "latest") -> Provider | None:
        """The registry entry of ``provider``; ``None`` when it was never registered."""
        try:
            key, commitment, active, registered_at = self._view(
                "providerOf", to_checksum_address(provider), block=block)
        except ContractReverted as reverted:
            if reverted.name == "ProviderRegistryUnknownProvider":
                return None
            raise
        return Provider(address=to_checksum_address(provider), umbral_public_key=bytes(key),
                        credential_commitment=bytes(commitment), active=bool(active),
                        registered_at=int(registered_at))

    def is_active_provider(self, provider: Address, *,
                           block: BlockIdentifier = "latest") -> bool:
        return bool(self._view("isActiveProvider", to_checksum_address(provider), block=block))

    def is_registered(self, provider: Address, *, block: BlockIdentifier = "latest") -> bool:
        return bool(self._view("isRegistered", to_checksum_address(provider), block=block))

    def registrar_role(self) -> bytes:
        return bytes(self._view("REGISTRAR_ROLE"))

    def is_registrar(self, account: Address) -> bool:
        return bool(self._view("hasRole", self.registrar_role(), to_checksum_address(account)))

    # ========================================================================================
    # Transactions
    # ========================================================================================

    def add_provider_call(self, provider: Address, umbral_public_key: bytes,
                          credential_commitment: bytes) -> ContractCall:
        return self._call("addProvider", to_checksum_address(provider), bytes(umbral_public_key),
                          as_bytes32("credential_commitment", credential_commitment))

    def add_provider(self, provider: Address, umbral_public_key: bytes,
                     credential_commitment: bytes, *, signer: Signer) -> TxReceipt:
        """A registrar (the signer) verifies ``provider`` with its Umbral key (33 bytes)."""
        return self._send(self.add_provider_call(provider, umbral_public_key,
                                                 credential_commitment), signer)

    def suspend_provider_call(self, provider: Address) -> ContractCall:
        return self._call("suspendProvider", to_checksum_address(provider))

    def suspend_provider(self, provider: Address, *, signer: Signer) -> TxReceipt:
        return self._send(self.suspend_provider_call(provider), signer)

    def reinstate_provider_call(self, provider: Address) -> ContractCall:
        return self._call("reinstateProvider", to_checksum_address(provider))

    def reinstate_provider(self, provider: Address, *, signer: Signer) -> TxReceipt:
        return self._send(self.reinstate_provider_call(provider), signer)

    def rotate_umbral_key_call(self, umbral_public_key: bytes) -> ContractCall:
        return self._call("rotateUmbralKey", bytes(umbral_public_key))

    def rotate_umbral_key(self, umbral_public_key: bytes, *, signer: Signer) -> TxReceipt:
        """The provider (the signer) replaces its own Umbral public key."""
        return self._send(self.rotate_umbral_key_call(umbral_public_key), signer)

    def add_registrar_call(self, account: Address) -> ContractCall:
        return self._call("grantRole", self.registrar_role(), to_checksum_address(account))

    def add_registrar(self, account: Address, *, signer: Signer) -> TxReceipt:
        """The admin (the signer) lets ``account`` add and suspend providers."""
        return self._send(self.add_registrar_call(account), signer)


__all__ = ["REGISTRAR_ROLE", "UMBRAL_KEY_LENGTH", "ProviderRegistryAgent"]
