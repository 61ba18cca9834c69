"""Who may use the line: roles, people with PINs, API tokens, HMI sessions and PIN lock-out.

Owns the role order, PIN hashing (scrypt), the rules for wrong PINs (a per-user lock-out that
only an admin clears, and a per-address limit that expires by itself), and the store of users,
tokens and sessions in the line's database. It does not know about HTTP: cookies, headers and
which route needs which role live in ``api/``. Time comes from an injected wall clock.

Roles form one line, so "one role below" is always defined::

    public < integrator < operator < supervisor < admin

``integrator`` is a token-only role for machines (e-commerce and traceability platforms): it
reads what an operator sees and commands nothing. People (HMI users) are operators,
supervisors or admins; tokens may carry any role but ``public``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, delete, func, insert, select, update

from grading.schema import api_tokens, as_utc, auth_sessions, login_failures, users


class Role(StrEnum):
    public = "public"
    integrator = "integrator"
    operator = "operator"
    supervisor = "supervisor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def below(self) -> Role | None:
        """The next role down, or None for ``public``."""
        return _ORDER[self.rank - 1] if self.rank > 0 else None

    def allows(self, held: Role) -> bool:
        """Whether someone holding ``held`` meets this role as a least requirement."""
        return held.rank >= self.rank


_ORDER = (Role.public, Role.integrator, Role.operator, Role.supervisor, Role.admin)
USER_ROLES = (Role.operator, Role.supervisor, Role.admin)
TOKEN_ROLES = (Role.integrator, Role.operator, Role.supervisor, Role.admin)

_NAME = re.compile(r"^[\w.\-]{1,64}$")  # \w is Unicode: 张三 is a valid user name
_PIN = re.compile(r"^[0-9]{4,12}$")


# ------------------------------------------------------------------------- errors


class AccessError(Exception):
    """Base of this module's errors."""


class InvalidInput(AccessError):
    """A name, role or PIN that does not meet the rules; ``field`` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(AccessError):
    """No user or token of that name."""


class NameTaken(AccessError):
    """A user or token of that name exists already."""


class LoginRefused(AccessError):
    """A PIN login did not succeed. Subclasses say why; the message is safe to show."""


class BadCredentials(LoginRefused):
    """Unknown user, disabled user or wrong PIN: deliberately not told apart."""


class UserLocked(LoginRefused):
    """Too many wrong PINs in a row; an admin must clear the lock."""


class AddressLimited(LoginRefused):
    """Too many wrong PINs from one client address; try again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# ------------------------------------------------------------------------- PIN hashing


@dataclass(frozen=True)
class PinHasher:
    """scrypt with parameters stored beside each hash; n=2**14, r=8 takes 16 MiB and tens of ms."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def hash(self, pin: str) -> str:
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(pin.encode(), salt=salt, n=self.n, r=self.r, p=self.p, dklen=32)
        return f"scrypt${self.n}${self.r}${self.p}${_b64(salt)}${_b64(digest)}"

    @staticmethod
    def verify(pin: str, stored: str) -> bool:
        try:
            scheme, n, r, p, salt, digest = stored.split("$")
        except ValueError:
            return False
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected),
            maxmem=128 * int(n) * int(r) * int(p) + 2**20,
        )
        return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str, field: str = "name") -> str:
    if not _NAME.match(name):
        raise InvalidInput(field, "1 to 64 letters, digits, '.', '_' or '-'")
    return name


def check_pin(pin: str) -> str:
    if not _PIN.match(pin):
        raise InvalidInput("pin", "4 to 12 digits")
    return pin


def parse_role(value: str, allowed: Sequence[Role], field: str = "role") -> Role:
    try:
        role = Role(value)
    except ValueError:
        role = None
    if role is None or role not in allowed:
        raise InvalidInput(field, f"one of {', '.join(r.value for r in allowed)}")
    return role


# ------------------------------------------------------------------------- records


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    active: bool
    created_at: datetime
    failed_pins: int
    locked_at: datetime | None

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


@dataclass(frozen=True)
class Session:
    """A signed-in HMI user. ``secret`` goes in the cookie; only its hash is stored."""

    user: User
    csrf_token: str
    expires_at: datetime
    secret: str = ""


@dataclass(frozen=True)
class LockoutPolicy:
    user_failures_to_lock: int = 5
    address_failures_limit: int = 20
    address_window_s: float = 900.0
    session_duration_s: float = 12 * 3600.0  # one shift



def _user(row: object) -> User:
    r = row._mapping  # type: ignore[attr-defined]
    return User(
        id=int(r["id"]), name=r["name"], role=Role(r["role"]), active=bool(r["active"]),
        created_at=as_utc(r["created_at"]), failed_pins=int(r["failed_pins"]),
        locked_at=as_utc(r["locked_at"]) if r["locked_at"] is not None else None,
    )


def _token(row: object) -> Token:
    r = row._mapping  # type: ignore[attr-defined]
    return Token(
        id=int(r["id"]), name=r["name"], role=Role(r["role"]), prefix=r["prefix"],
        created_at=as_utc(r["created_at"]), created_by=r["created_by"],
        revoked_at=as_utc(r["revoked_at"]) if r["revoked_at"] is not None else None,
    )


# ------------------------------------------------------------------------- the store


class AccessStore:
    """Users, tokens and sessions in the line's database. Blocking: call it off the event loop."""

    def __init__(
        self,
        engine: Engine,
        *,
        policy: LockoutPolicy | None = None,
        hasher: PinHasher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self.policy = policy or LockoutPolicy()
        self._hasher = hasher or PinHasher()
        self._clock = clock
        # checked against when the user does not exist, so that a miss costs as long as a wrong PIN
        self._dummy_hash = self._hasher.hash("0000")

    def now(self) -> datetime:
        return self._clock()

    # ---------------------------------------------------------------- users

    def add_user(self, name: str, role: Role, pin: str) -> User:
        check_name(name)
        if role not in USER_ROLES:
            raise InvalidInput("role", f"people are one of {', '.join(r.value for r in USER_ROLES)}")
        pin_hash = self._hasher.hash(check_pin(pin))
        with self._engine.begin() as conn:
            if conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
                raise NameTaken(f"user {name!r} exists already")
            conn.execute(
                insert(users).values(
                    name=name, role=role.value, pin_hash=pin_hash, active=True, created_at=self._clock(),
                    failed_pins=0, locked_at=None,
                )
            )
            return _user(conn.execute(select(users).where(users.c.name == name)).one())

    def get_user(self, name: str) -> User:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            raise NotFound(f"no user {name!r}")
        return _user(row)

    def list_users(self, *, after_id: int = 0, limit: int | None = None) -> list[User]:
        query = select(users).where(users.c.id > after_id).order_by(users.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [_user(row) for row in conn.execute(query)]

    def disable_user(self, name: str) -> tuple[User, User]:
        """Disable and end every session of the user; returns (before, after)."""
        with self._engine.begin() as conn:
            before = self._locked_row(conn, name)
            conn.execute(update(users).where(users.c.id == before.id).values(active=False))
            conn.execute(delete(auth_sessions).where(auth_sessions.c.user_id == before.id))
            after = _user(conn.execute(select(users).where(users.c.id == before.id)).one())
        return before, after

    def unlock_user(self, name: str) -> tuple[User, User]:
        """Clear a PIN lock-out and the count of wrong PINs; returns (before, after)."""
        with self._engine.begin() as conn:
            before = self._locked_row(conn, name)
            conn.execute(update(users).where(users.c.id == before.id).values(failed_pins=0, locked_at=None))
            after = _user(conn.execute(select(users).where(users.c.id == before.id)).one())
        return before, after

    @staticmethod
    def _locked_row(conn: object, name: str) -> User:
        row = conn.execute(select(users).where(users.c.name == name)).first()  # type: ignore[attr-defined]
        if row is None:
            raise NotFound(f"no user {name!r}")
        return _user(row)

    # ---------------------------------------------------------------- PIN login

    def login(self, name: str, pin: str, client_address: str) -> Session:
        """Check a PIN and open a session; raises a ``LoginRefused`` that says why not.

        A wrong PIN is counted against the user before the PIN is checked, so that guesses
        sent in parallel cannot exceed the limit; a right one resets the count.
        """
        now = self._clock()
        policy = self.policy
        window_start = now - timedelta(seconds=policy.address_window_s)
        with self._engine.begin() as conn:
            failures = conn.execute(
                select(func.count(), func.min(login_failures.c.at)).where(
                    login_failures.c.client_address == client_address, login_failures.c.at > window_start
                )
            ).one()
            if failures[0] >= policy.address_failures_limit:
                oldest = as_utc(failures[1])
                retry_after_s = max(1.0, (oldest - window_start).total_seconds())
                raise AddressLimited("too many wrong PINs from this address", retry_after_s)
            row = conn.execute(select(users).where(users.c.name == name)).first()
            user = _user(row) if row is not None else None
            if user is not None and user.active and not user.locked:
                claimed = conn.execute(
                    update(users)
                    .where(
                        users.c.id == user.id, users.c.locked_at.is_(None),
                        users.c.failed_pins < policy.user_failures_to_lock,
                    )
                    .values(failed_pins=users.c.failed_pins + 1)
                    .returning(users.c.failed_pins)
                ).scalar_one_or_none()
                if claimed is None:  # parallel attempts used up the allowance: as good as locked
                    user = replace(user, locked_at=now)
        # The slow part runs outside the transaction: SQLite would hold its write lock meanwhile.
        if user is None or not user.active:
            PinHasher.verify(pin, self._dummy_hash)
            self._record_failure(name, client_address, now)
            raise BadCredentials("user or PIN wrong")
        if user.locked:
            self._record_failure(name, client_address, now)
            raise UserLocked("locked after too many wrong PINs: an admin must unlock")
        if not PinHasher.verify(pin, self._pin_hash(user.id)):
            self._record_failure(name, client_address, now)
            with self._engine.begin() as conn:
                count = conn.execute(select(users.c.failed_pins).where(users.c.id == user.id)).scalar_one()
                locks = count >= policy.user_failures_to_lock
                if locks:
                    conn.execute(
                        update(users).where(users.c.id == user.id, users.c.locked_at.is_(None)).values(locked_at=now)
                    )
            if locks:
                raise UserLocked("wrong PIN; locked after too many wrong PINs: an admin must unlock")
            raise BadCredentials("user or PIN wrong")
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires_at = now + timedelta(seconds=policy.session_duration_s)
        with self._engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == user.id).values(failed_pins=0))
            conn.execute(
                insert(auth_sessions).values(
                    id_sha256=_sha256(secret), user_id=user.id, csrf_token=csrf, client_address=client_address,
                    created_at=now, expires_at=expires_at,
                )
            )
            conn.execute(delete(auth_sessions).where(auth_sessions.c.expires_at < now))
            user = _user(conn.execute(select(users).where(users.c.id == user.id)).one())
        return Session(user=user, csrf_token=csrf, expires_at=expires_at, secret=secret)

    def _pin_hash(self, user_id: int) -> str:
        with self._engine.connect() as conn:
            return str(conn.execute(select(users.c.pin_hash).where(users.c.id == user_id)).scalar_one())

    def _record_failure(self, name: str, client_address: str, now: datetime) -> None:
        keep_from = now - timedelta(seconds=max(self.policy.address_window_s, 86400.0))
        with self._engine.begin() as conn:
            conn.execute(insert(login_failures).values(at=now, user_name=name[:64], client_address=client_address))
            conn.execute(delete(login_failures).where(login_failures.c.at < keep_from))

    # ---------------------------------------------------------------- sessions

    def session(self, secret: str) -> Session | None:
        """The live session behind a cookie secret: unexpired, its user active."""
        query = (
            select(users, auth_sessions.c.csrf_token, auth_sessions.c.expires_at)
            .join(auth_sessions, auth_sessions.c.user_id == users.c.id)
            .where(auth_sessions.c.id_sha256 == _sha256(secret))
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        user = _user(row)
        expires_at = as_utc(row.expires_at)
        if not user.active or expires_at <= self._clock():
            return None
        return Session(user=user, csrf_token=row.csrf_token, expires_at=expires_at)

    def end_session(self, secret: str) -> bool:
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(auth_sessions).where(auth_sessions.c.id_sha256 == _sha256(secret))).rowcount)

    # ---------------------------------------------------------------- tokens

    def create_token(self, name: str, role: Role, created_by: str) -> tuple[str, Token]:
        """A new token; the secret is returned once and only its hash is kept."""
        check_name(name)
        if role not in TOKEN_ROLES:
            raise InvalidInput("role", f"tokens are one of {', '.join(r.value for r in TOKEN_ROLES)}")
        secret = "glt_" + secrets.token_urlsafe(32)
        with self._engine.begin() as conn:
            if conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name)).first() is not None:
                raise NameTaken(f"token {name!r} exists already")
            conn.execute(
                insert(api_tokens).values(
                    name=name, role=role.value, token_sha256=_sha256(secret), prefix=secret[:10],
                    created_at=self._clock(), created_by=created_by[:100], revoked_at=None,
                )
            )
            token = _token(conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one())
        return secret, token

    def token(self, secret: str) -> Token | None:
        """The unrevoked token with this secret."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(api_tokens).where(api_tokens.c.token_sha256 == _sha256(secret), api_tokens.c.revoked_at.is_(None))
            ).first()
        return _token(row) if row is not None else None

    def list_tokens(self) -> list[Token]:
        with self._engine.connect() as conn:
            return [_token(row) for row in conn.execute(select(api_tokens).order_by(api_tokens.c.id))]

    def revoke_token(self, name: str) -> tuple[Token, Token]:
        with self._engine.begin() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
            if row is None:
                raise NotFound(f"no token {name!r}")
            before = _token(row)
            if before.revoked_at is None:
                conn.execute(update(api_tokens).where(api_tokens.c.id == before.id).values(revoked_at=self._clock()))
            after = _token(conn.execute(select(api_tokens).where(api_tokens.c.id == before.id)).one())
        return before, after

