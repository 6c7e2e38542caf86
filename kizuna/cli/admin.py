"""``kizuna admin``: who holds the operating roles of a deployment, and granting / revoking them.

The roles are OpenZeppelin ``AccessControl`` roles of two contracts; the admin's actions are
the admin's own transactions, sent with their key straight to the chain (no service involved):

=========== ==================== ============================== ==================================
role        contract             role id                        what it allows
=========== ==================== ============================== ==================================
admin       ProviderRegistry and ``DEFAULT_ADMIN_ROLE`` (0x00)  grant and revoke every role below
            AccessLog                                           (and ``admin`` itself)
registrar   ProviderRegistry     ``REGISTRAR_ROLE``             verify, suspend, reinstate
                                                                providers (`kizuna registrar`)
anchorer    AccessLog            ``ANCHOR_ROLE``                anchor receipt roots (the
                                                                service's ``KIZUNA_ANCHORER_KEY``)
auditor     AccessLog            ``KIZUNA_AUDITOR_ROLE``        the API's auditor routes
=========== ==================== ============================== ==================================

The deployer holds ``admin`` on both contracts from the constructors. The relayer needs no
role (a signed action may be relayed by anyone): only a funded key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kizuna.cli.output import Column, emit, json_option, print_table
from kizuna.cli.participant import (
    RoleArgs,
    chain_options,
    connect_chain,
    hex32,
    known_names,
    resolve_participant,
    settings_of,
    unlock,
)
from kizuna.errors import AccessDenied, ContractReverted, InputError

ROLE_NAMES = ("admin", "registrar", "anchorer", "auditor")


@dataclass(frozen=True, slots=True)
class RoleSlot:
    """One role id in one contract."""

    role: str
    contract: str
    role_id: bytes


def role_slots(chain: Any, role: str) -> list[RoleSlot]:
    """Where ``role`` (a name of :data:`ROLE_NAMES`) lives: ``admin`` in both contracts."""
    from kizuna.chain.agents.access_log import AUDITOR_ROLE
    from kizuna.chain.agents.base import DEFAULT_ADMIN_ROLE

    if role == "admin":
        return [RoleSlot(role, "ProviderRegistry", DEFAULT_ADMIN_ROLE),
                RoleSlot(role, "AccessLog", DEFAULT_ADMIN_ROLE)]
    if role == "registrar":
        return [RoleSlot(role, "ProviderRegistry", chain.registry.registrar_role())]
    if role == "anchorer":
        return [RoleSlot(role, "AccessLog", chain.access_log.anchor_role())]
    if role == "auditor":
        return [RoleSlot(role, "AccessLog", AUDITOR_ROLE)]
    raise InputError("role", f"{role!r} is not a role: one of {', '.join(ROLE_NAMES)}")


def _agent(chain: Any, contract: str) -> Any:
    return chain.registry if contract == "ProviderRegistry" else chain.access_log


def _role_name(chain: Any, contract: str, role_id: bytes) -> str:
    for name in ROLE_NAMES:
        for slot in role_slots(chain, name):
            if slot.contract == contract and slot.role_id == role_id:
                return name
    return hex32(role_id)


def _holders(chain: Any) -> list[tuple[RoleSlot, str]]:
    """Every (role slot, account) from the chain's RoleGranted / RoleRevoked events (an
    in-memory event index synced to the head: nothing cached is trusted)."""
    from kizuna.chain.index.store import EventIndex

    index = EventIndex.for_chain(chain, ":memory:")
    try:
        index.sync()
        return [(slot, str(account)) for name in ROLE_NAMES for slot in role_slots(chain, name)
                for account in index.role_holders(slot.contract, slot.role_id)]
    finally:
        index.close()


def _change(role: str, account: str, kwargs: dict[str, Any], *, grant: bool) -> None:
    args = RoleArgs.take(kwargs)
    home, settings = settings_of(args)
    chain = connect_chain(settings)
    signer = unlock(args, home)
    who = resolve_participant(account, home=home, field="account")
    slots = role_slots(chain, role)
    if not grant and role == "admin":
        # AccessControl lets the last admin go; then nobody could ever grant a role again.
        holders = _holders(chain)
        for slot in slots:
            others = [h for s, h in holders
                      if s.contract == slot.contract and s.role == "admin" and h != who]
            if not others:
                raise InputError("account", f"{who} is the only admin of {slot.contract}: "
                                 "revoking it would leave no one to grant or revoke roles "
                                 "(grant admin to another account first)")
    done: list[dict[str, Any]] = []
    for slot in slots:
        agent = _agent(chain, slot.contract)
        if agent.has_role(slot.role_id, who) == grant:
            done.append({"role": role, "contract": slot.contract, "account": who,
                         "changed": False, "tx_hash": None, "block_number": None})
            continue
        try:
            receipt = (agent.grant_role(slot.role_id, who, signer=signer) if grant
                       else agent.revoke_role(slot.role_id, who, signer=signer))
        except ContractReverted as reverted:
            if reverted.name != "AccessControlUnauthorizedAccount":
                raise
            needed = bytes(reverted.error_args.get("neededRole", b""))
            raise AccessDenied(
                f"{signer.address} may not {'grant' if grant else 'revoke'} the {role} role on "
                f"{slot.contract}: it lacks the {_role_name(chain, slot.contract, needed)} "
                f"role there (the contract refused: {reverted}). Use the key of an admin: the "
                "deployer's, or one `kizuna admin grant-role admin` made") from None
        done.append({"role": role, "contract": slot.contract, "account": who, "changed": True,
                     "tx_hash": hex32(receipt.tx_hash), "block_number": receipt.block_number})
    verb = "granted" if grant else "revoked"
    emit(done, human=lambda: print_table(
        [{**d, "changed": verb if d["changed"] else ("held already" if grant else "not held")}
         for d in done],
        [Column("role", "Role"), Column("contract", "Contract"), Column("account", "Account"),
         Column("changed", "Done"), Column("tx_hash", "Transaction")],
        title=f"Role {role} {verb}" if any(d["changed"] for d in done) else "Nothing to do"))


@click.group("admin")
def admin() -> None:
    """The deployment's operating roles: admin, registrar, anchorer, auditor.

    Commands send the admin's own transactions to the configured chain (--key NAME of an
    account holding the contracts' admin role: the deployer's, unless it granted admin to
    another account). `kizuna admin roles` lists who holds which role (no key needed).

    \b
    Roles:
      admin      grants and revokes every role (ProviderRegistry and AccessLog)
      registrar  verifies, suspends and reinstates providers (ProviderRegistry)
      anchorer   anchors receipt roots: the service's KIZUNA_ANCHORER_KEY (AccessLog)
      auditor    the API's auditor routes and `kizuna audit` (AccessLog)
    The relayer (KIZUNA_RELAYER_KEY) needs no role, only funds.

    \b
    Examples:
      kizuna admin grant-role auditor 0xAbC... --key admin
      kizuna admin revoke-role registrar 0xAbC... --key admin
      kizuna admin roles
    """


@admin.command("grant-role")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@click.argument("account")
@chain_options
@json_option
def grant_role(role: str, account: str, as_json: bool, **kwargs: Any) -> None:
    """Give ROLE to ACCOUNT (an address or a key name). Effective from the next block: the
    service reads roles at each request.

    \b
    Example:
      kizuna admin grant-role auditor 0xAbC... --key admin
    """
    _change(role, account, kwargs, grant=True)


@admin.command("revoke-role")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@click.argument("account")
@chain_options
@json_option
def revoke_role(role: str, account: str, as_json: bool, **kwargs: Any) -> None:
    """Take ROLE from ACCOUNT. Refused for the last admin of a contract.

    \b
    Example:
      kizuna admin revoke-role auditor 0xAbC... --key admin
    """
    _change(role, account, kwargs, grant=False)


@admin.command("roles")
@click.option("--role", type=click.Choice(ROLE_NAMES), help="Only this role's holders.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Configuration file (default: $KIZUNA_CONFIG, else $KIZUNA_HOME/config.toml).")
@click.option("--home", "home_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Kizuna home directory (default: $KIZUNA_HOME, else ~/.kizuna).")
@json_option
def roles(role: str | None, config_file: Path | None, home_dir: Path | None,
          as_json: bool) -> None:
    """Who holds which role, from the contracts' RoleGranted / RoleRevoked events (no key
    needed).

    \b
    Example:
      kizuna admin roles --json | jq -r '.[] | select(.role == "auditor") | .account'
    """
    args = RoleArgs(key_name=None, passphrase_file=None, home_dir=home_dir,
                    config_file=config_file, api_url=None, local=False)
    home, settings = settings_of(args)
    chain = connect_chain(settings)
    names = known_names(home)
    rows = [{"role": slot.role, "contract": slot.contract, "account": account,
             "name": names.get(account)}
            for slot, account in _holders(chain) if role is None or slot.role == role]
    emit(rows, human=lambda: print_table(
        rows, [Column("role", "Role"), Column("contract", "Contract"),
               Column("account", "Account"), Column("name", "Key")],
        title="Roles of this deployment", empty="nobody holds a role"))


__all__ = ["ROLE_NAMES", "RoleSlot", "admin", "role_slots"]
