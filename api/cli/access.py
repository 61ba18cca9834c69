"""``gradeline user ...``, ``gradeline token ...`` and ``gradeline audit``: run on the line PC.

They work on the database named by the line config (``--config``; none = the demo's), while
the line runs or not. Each change is written to the audit log as done by the login name, kind ``cli``,
from ``local`` (shown as ``cli:<login name>``). A PIN is asked for on the terminal; ``--pin-stdin`` reads it from standard
input instead, for provisioning scripts.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from api.cli import CliParsers
from grading.access import (
    TOKEN_ROLES,
    USER_ROLES,
    AccessError,
    AccessStore,
    InvalidInput,
    Role,
    check_pin,
)
from grading.audit import Actor, AuditLog


def register(parsers: CliParsers) -> None:
    users = parsers.root.add_parser("user", help="HMI users: add, list, disable, unlock.").add_subparsers(
        dest="user", required=True
    )
    add = users.add_parser("add", help="Add a user; asks for the PIN (4 to 12 digits).")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in USER_ROLES])
    add.add_argument("--pin-stdin", action="store_true", help="Read the PIN from standard input (scripts).")
    _config(add)
    add.set_defaults(func=_guarded(_user_add))
    listing = users.add_parser("list", help="Every user, with lock-out state.")
    listing.add_argument("--json", action="store_true", help="One JSON object per line.")
    _config(listing)
    listing.set_defaults(func=_guarded(_user_list))
    disable = users.add_parser("disable", help="Disable a user and end its logins.")
    disable.add_argument("name")
    _config(disable)
    disable.set_defaults(func=_guarded(_user_disable))
    unlock = users.add_parser("unlock", help="Clear a PIN lock-out.")
    unlock.add_argument("name")
    _config(unlock)
    unlock.set_defaults(func=_guarded(_user_unlock))

    tokens = parsers.root.add_parser("token", help="API tokens: create, list, revoke.").add_subparsers(
        dest="token", required=True
    )
    create = tokens.add_parser("create", help="Create a token; prints it once (only its hash is kept).")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in TOKEN_ROLES])
    _config(create)
    create.set_defaults(func=_guarded(_token_create))
    tlist = tokens.add_parser("list", help="Every token (never the secret).")
    tlist.add_argument("--json", action="store_true", help="One JSON object per line.")
    _config(tlist)
    tlist.set_defaults(func=_guarded(_token_list))
    revoke = tokens.add_parser("revoke", help="Revoke a token.")
    revoke.add_argument("name")
    _config(revoke)
    revoke.set_defaults(func=_guarded(_token_revoke))

    audit = parsers.root.add_parser("audit", help="Print the audit log, newest first.")
    audit.add_argument("--limit", type=int, default=50, help="Entries to print (default 50).")
    audit.add_argument("--json", action="store_true", help="One JSON object per line.")
    _config(audit)
    audit.set_defaults(func=_guarded(_audit))


def _config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="Line config TOML file (its [database]); none = the demo line's.")


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except AccessError as exc:
            print(f"gradeline: {exc}", file=sys.stderr)
            return 2

    return run


def _open(args: argparse.Namespace) -> tuple[AccessStore, AuditLog, Any]:
    from api.config import ConfigError, load_config
    from grading.store import create_store_engine, migrate

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise AccessError(str(exc)) from exc
    engine = create_store_engine(config.database.line_url)
    migrate(engine)
    return AccessStore(engine), AuditLog(engine), engine


def _actor() -> Actor:
    try:
        login = getpass.getuser()
    except Exception:  # no login name in a bare container
        login = "unknown"
    return Actor("cli", login, None, "local")


def _read_pin(from_stdin: bool) -> str:
    if from_stdin:
        return check_pin(sys.stdin.readline().strip())
    pin = check_pin(getpass.getpass("PIN (4-12 digits): "))
    if getpass.getpass("PIN again: ") != pin:
        raise InvalidInput("pin", "the two PINs differ")
    return pin


def _user_add(args: argparse.Namespace) -> int:
    pin = _read_pin(args.pin_stdin)
    access, audit, engine = _open(args)
    user = access.add_user(args.name, Role(args.role), pin)
    audit.record(_actor(), "user.add", target=user.name, after={"role": user.role.value, "active": True})
    engine.dispose()
    print(f"gradeline: user {user.name} added ({user.role.value})")
    return 0


def _user_json(u: Any) -> dict[str, Any]:
    return {
        "name": u.name, "role": u.role.value, "active": u.active, "locked": u.locked, "failed_pins": u.failed_pins,
        "created_at": u.created_at.isoformat(),
    }


def _user_list(args: argparse.Namespace) -> int:
    access, _, engine = _open(args)
    rows = [_user_json(u) for u in access.list_users()]
    engine.dispose()
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print(f"{'name':<20} {'role':<11} {'active':<7} {'locked':<7} {'wrong PINs':<10} created")
    for r in rows:
        print(f"{r['name']:<20} {r['role']:<11} {_yes(r['active']):<7} {_yes(r['locked']):<7} {r['failed_pins']:<10} {r['created_at']}")
    return 0


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _user_disable(args: argparse.Namespace) -> int:
    access, audit, engine = _open(args)
    before, after = access.disable_user(args.name)
    audit.record(_actor(), "user.disable", target=args.name, before={"active": before.active}, after={"active": after.active})
    engine.dispose()
    print(f"gradeline: user {args.name} disabled; its logins are ended")
    return 0


def _user_unlock(args: argparse.Namespace) -> int:
    access, audit, engine = _open(args)
    before, after = access.unlock_user(args.name)
    audit.record(
        _actor(), "user.unlock", target=args.name,
        before={"locked": before.locked, "failed_pins": before.failed_pins},
        after={"locked": after.locked, "failed_pins": after.failed_pins},
    )
    engine.dispose()
    print(f"gradeline: user {args.name} unlocked")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    access, audit, engine = _open(args)
    actor = _actor()
    secret, token = access.create_token(args.name, Role(args.role), f"cli:{actor.name}")
    audit.record(actor, "token.create", target=token.name, after={"role": token.role.value})
    engine.dispose()
    print(f"gradeline: token {token.name} ({token.role.value}) created; it is shown once, keep it now:", file=sys.stderr)
    print(secret, flush=True)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    access, _, engine = _open(args)
    tokens = access.list_tokens()
    engine.dispose()
    rows = [
        {
            "name": t.name, "role": t.role.value, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
            "created_by": t.created_by, "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in tokens
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print(f"{'name':<24} {'role':<11} {'starts with':<12} {'created':<33} revoked")
    for r in rows:
        print(f"{r['name']:<24} {r['role']:<11} {r['prefix']:<12} {r['created_at']:<33} {r['revoked_at'] or '-'}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    access, audit, engine = _open(args)
    before, after = access.revoke_token(args.name)
    audit.record(
        _actor(), "token.revoke", target=args.name,
        before={"revoked": before.revoked_at is not None}, after={"revoked": after.revoked_at is not None},
    )
    engine.dispose()
    print(f"gradeline: token {args.name} revoked (a running line stops accepting it within auth.credential_cache_s)")
    return 0


def _audit(args: argparse.Namespace) -> int:
    _, audit, engine = _open(args)
    entries = audit.page(max(1, args.limit))
    engine.dispose()
    for e in entries:
        if args.json:
            print(json.dumps(
                {
                    "id": e.id, "at": e.at.isoformat(), "actor_kind": e.actor_kind, "actor": e.actor, "role": e.role,
                    "action": e.action, "target": e.target, "outcome": e.outcome, "client_address": e.client_address,
                    "before": e.before, "after": e.after, "detail": e.detail,
                },
                ensure_ascii=False,
            ))
            continue
        who = f"{e.actor_kind}:{e.actor}" + (f" ({e.role})" if e.role else "")
        change = f" {json.dumps(e.before, ensure_ascii=False)} -> {json.dumps(e.after, ensure_ascii=False)}" if e.before or e.after else ""
        detail = f" [{e.detail}]" if e.detail else ""
        print(f"{e.at.isoformat()} {who} {e.action} {e.target or '-'} {e.outcome} from {e.client_address}{change}{detail}")
    return 0
