"""The relayer: submits a patient's signed action with its own key, so the patient pays no gas
(the consent ledger's actions, and the study registry's ``StudyConsent`` and
``StudyWithdrawal``).

Before spending anything, the relayer checks the signature locally (it must recover to the
patient named in the action, for this chain and this ledger) and simulates the ``...BySig`` call
with ``eth_call`` from its own address. A signature that would revert — expired deadline, used
nonce, wrong signer, an action the ledger refuses — is refused with :class:`RelayRefused`,
carrying the decoded custom error (name and arguments) as the reason.

With a :class:`~kizuna.services.quotas.GasBudget` (the service's: ``relayer_gas_per_day``) the
relayer spends at most that much gas per patient wallet and UTC day: the estimate is reserved
before anything is sent (``QuotaExceeded`` with ``retry_after`` when it does not fit, and no
transaction leaves), then settled to the receipt's ``gasUsed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kizuna.chain.eip712 import STUDY_ACTIONS, SignedAction
from kizuna.chain.models import ContractCall, TxReceipt
from kizuna.chain.signers import Signer, recover_typed_data_signer
from kizuna.chain.transactions import TransactionReverted
from kizuna.errors import ContractReverted
from kizuna.types import Address

if TYPE_CHECKING:
    from kizuna.chain.connection import Chain
    from kizuna.services.quotas import GasBudget


class RelayRefused(ContractReverted):
    """The relayer will not submit this signed action: it would revert (reason decoded)."""

    def __init__(self, action: SignedAction, reverted: ContractReverted) -> None:
        super().__init__(reverted.name, reverted.error_args, data=reverted.data)
        self.action = action
        self.args = (f"refused to relay {action.kind} of {action.patient}: {self.args[0]}",)


class Relayer:
    """Relays signed ledger (and study registry) actions with ``signer`` (the relayer's own
    funded key)."""

    def __init__(self, chain: Chain, signer: Signer, *, budget: GasBudget | None = None) -> None:
        self.chain = chain
        self.signer = signer
        self.budget = budget

    def require_budget(self, patient: Address) -> None:
        """``QuotaExceeded`` when ``patient``'s gas budget for today is used up (checked before
        an upload streams its body; :meth:`relay` checks the action's own estimate)."""
        if self.budget is not None:
            self.budget.require_room(patient)

    @property
    def address(self) -> Address:
        return self.signer.address

    def check(self, action: SignedAction) -> ContractCall:
        """The call that would submit ``action``, after a local check and a simulation.

        Raises :class:`RelayRefused` with the ledger's decoded error when it would revert.
        """
        study = action.kind in STUDY_ACTIONS
        recovered = recover_typed_data_signer(action.typed, action.signature)
        if recovered != action.patient:
            raise RelayRefused(action, ContractReverted(
                "StudyRegistryInvalidSigner" if study else "ConsentLedgerInvalidSigner",
                {"signer": recovered, "patient": action.patient}))
        call = (self.chain.studies if study else self.chain.ledger).by_sig_call(action)
        try:
            self.chain.sender.simulate(call, sender=self.signer.address)
        except ContractReverted as reverted:
            raise RelayRefused(action, reverted) from None
        return call

    def relay(self, action: SignedAction) -> TxReceipt:
        """Check, then send ``action`` and wait for its receipt (within the gas budget)."""
        call = self.check(action)
        sender = self.chain.sender
        try:
            if self.budget is None:
                return sender.transact(call, self.signer)
            gas = sender.estimate_gas(call, sender=self.signer.address)
            held = self.budget.reserve(action.patient, gas)  # QuotaExceeded: nothing sent
            try:
                tx_hash = sender.broadcast(call, self.signer, gas=gas)
            except ContractReverted:  # the node refused it: nothing was sent, nothing spent
                self.budget.settle(held, 0)
                raise
            try:
                receipt = sender.wait(tx_hash, call=call, sender=self.signer.address)
            except TransactionReverted as reverted:  # mined and failed: its gas is spent
                if reverted.receipt is not None:
                    self.budget.settle(held, reverted.receipt.gas_used)
                raise
            # Any other failure keeps the reservation: the transaction may yet be mined.
            self.budget.settle(held, receipt.gas_used)
            return receipt
        except ContractReverted as reverted:  # the state changed between check and send
            raise RelayRefused(action, reverted) from None


__all__ = ["RelayRefused", "Relayer"]
