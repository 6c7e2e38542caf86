"""The audit log shows who was given and who lost the AccessLog's roles (an auditor, an anchoring
service): who may see every patient's log is itself part of what an auditor checks."""

from __future__ import annotations

from pathlib import Path

from audit_story import build_story

from kizuna.chain.agents.access_log import AUDITOR_ROLE
from kizuna.chain.signers import LocalKeySigner
from kizuna.services import audit
from kizuna.services.audit import EntryKind


def test_access_log_role_grants_and_revokes_are_entries(tmp_path: Path) -> None:
    story = build_story(tmp_path)
    auditor = LocalKeySigner.generate().address
    log = story.chain.access_log
    log.grant_role(AUDITOR_ROLE, auditor, signer=story.admin)
    log.revoke_role(AUDITOR_ROLE, auditor, signer=story.admin)

    for history in (audit.ChainHistory.from_chain(story.chain),
                    audit.ChainHistory.from_index(story.chain, story.index)):
        about = history.entries(provider=auditor)
        assert [e.kind for e in about] == [EntryKind.ROLE_GRANTED, EntryKind.ROLE_REVOKED]
        for entry in about:
            assert entry.details["account"] == auditor
            assert entry.details["role"] == "0x" + AUDITOR_ROLE.hex()
            assert entry.actor == story.admin.address
        # The deployment's own grants (the admin, the anchoring service) are there too.
        kinds = [e.kind for e in history.entries()]
        assert kinds.count(EntryKind.ROLE_GRANTED) >= 2
