"""The relayer: submits a patient's signed action with its own key, so the patient pays no gas.

Before spending anything, the relayer checks the signature locally (it must recover to the
patient named in the action, for this chain and this ledger) and simulates the ``...BySig`` call
with ``eth_call`` from its own address. A signature that would revert — expired deadline, used
nonce, wrong signer, an action the ledger refuses — is refused with :class:`RelayRefused`,
carrying the decoded custom error (name and arguments) as the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kizuna.chain.eip712 import SignedAction
from kizuna.chain.models import ContractCall, TxReceipt
from kizuna.chain.signers import Signer, recover_typed_data_signer
from kizuna.errors import ContractReverted
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain


class RelayRefused(ContractReverted):
    """The relayer will not submit this signed action: it would revert (reason decoded)."""

    def __init__(self, action: SignedAction, reverted: ContractReverted) -> None:
        super().__init__(reverted.name, reverted.error_args, data=reverted.data)
        self.action = action
        self.args = (f"refused to relay {action.kind} of {action.patient}: {self.args[0]}",)


class Relayer:
    """Relays signed ledger actions with ``signer`` (the relayer's own funded key)."""

    def __init__(self, chain: Chain, signer: Signer) -> None:
        self.chain = chain
        self.signer = signer

    @property
    def address(self) -> Address:
        return self.signer.address

    def check(self, action: SignedAction) -> ContractCall:
        """The call that would submit ``action``, after a local check and a simulation.

        Raises :class:`RelayRefused` with the ledger's decoded error when it would revert.
        """
        recovered = recover_typed_data_signer(action.typed, action.signature)
        if recovered != action.patient:
            raise RelayRefused(action, ContractReverted(
                "ConsentLedgerInvalidSigner", {"signer": recovered, "patient": action.patient}))
        call = self.chain.ledger.by_sig_call(action)
        try:
            self.chain.sender.simulate(call, sender=self.signer.address)
        except ContractReverted as reverted:
            raise RelayRefused(action, reverted) from None
        return call

    def relay(self, action: SignedAction) -> TxReceipt:
        """Check, then send ``action`` and wait for its receipt."""
        call = self.check(action)
        try:
            return self.chain.sender.transact(call, self.signer)
        except ContractReverted as reverted:  # the state changed between check and send
            raise RelayRefused(action, reverted) from None


__all__ = ["RelayRefused", "Relayer"]
