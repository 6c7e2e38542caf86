"""What a verification answers: counts, and every finding with what failed and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Finding:
    """One failed check: which ``check`` (e.g. ``receipt.signature``), about which ``subject``
    (a request id, a root or a record id, ``0x`` hex), and why."""

    check: str
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The result of one verification: how many things were checked, which passed, and every
    failure with its reason. ``counts`` holds check-specific figures."""

    name: str
    checked: int
    passed: int
    failures: tuple[Finding, ...]
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed_checks(self) -> set[str]:
        """The names of the checks that failed (e.g. ``{"batch.root", "receipt.leaf"}``)."""
        return {f.check for f in self.failures}

    def about(self, subject: str | bytes) -> list[Finding]:
        """The findings about one subject (a request id, root or record id)."""
        key = "0x" + subject.hex() if isinstance(subject, bytes) else subject
        return [f for f in self.failures if f.subject == key]


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The three verifications together."""

    receipts: CheckReport
    access: CheckReport
    content: CheckReport

    @property
    def ok(self) -> bool:
        return self.receipts.ok and self.access.ok and self.content.ok


def hex_of(value: bytes) -> str:
    return "0x" + value.hex()
