"""Users, PINs, lock-out, sessions and tokens in the store, on SQLite and PostgreSQL, with a moved clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from grading.access import (
    AccessStore,
    AddressLimited,
    BadCredentials,
    InvalidInput,
    LockoutPolicy,
    NameTaken,
    NotFound,
    PinHasher,
    Role,
    UserLocked,
)
from grading.schema import api_tokens, users
from grading.store import create_store_engine, migrate

# cheap scrypt for the tests that hash many PINs; the parameters stored with each hash are checked below
FAST = PinHasher(n=2**10, r=8, p=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_store_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine: Engine, clock: Clock) -> AccessStore:
    return AccessStore(engine, policy=LockoutPolicy(address_failures_limit=8, address_window_s=600), hasher=FAST, clock=clock)


def test_role_order_is_one_line_and_one_below_is_defined() -> None:
    assert [r.value for r in sorted(Role, key=lambda r: r.rank)] == [
        "public", "integrator", "operator", "supervisor", "admin",
    ]
    assert Role.admin.below() is Role.supervisor
    assert Role.operator.below() is Role.integrator
    assert Role.integrator.below() is Role.public
    assert Role.public.below() is None
    assert Role.operator.allows(Role.supervisor) and not Role.operator.allows(Role.integrator)


def test_pin_hash_is_scrypt_salted_and_carries_its_parameters() -> None:
    stored = PinHasher().hash("4711")
    scheme, n, r, p, _salt, _digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert PinHasher.verify("4711", stored)
    assert not PinHasher.verify("4712", stored)
    assert PinHasher().hash("4711") != stored  # salted
    assert "4711" not in stored


def test_user_rules(store: AccessStore, engine: Engine) -> None:
    user = store.add_user("张三", Role.operator, "123456")
    assert (user.name, user.role, user.active, user.locked) == ("张三", Role.operator, True, False)
    with pytest.raises(NameTaken):
        store.add_user("张三", Role.admin, "123456")
    with pytest.raises(InvalidInput) as pin:
        store.add_user("li", Role.operator, "12a4")
    assert pin.value.field == "pin"
    with pytest.raises(InvalidInput) as role:
        store.add_user("robot", Role.integrator, "1234")  # integrator is for tokens only
    assert role.value.field == "role"
    with pytest.raises(InvalidInput):
        store.add_user("two words", Role.operator, "1234")
    with engine.connect() as conn:
        pin_hash = conn.execute(select(users.c.pin_hash)).scalar_one()
    assert pin_hash.startswith("scrypt$") and "123456" not in pin_hash


def test_login_opens_a_session_that_expires(store: AccessStore, clock: Clock) -> None:
    store.add_user("wang", Role.supervisor, "2468")
    session = store.login("wang", "2468", "10.0.0.5")
    assert session.user.role is Role.supervisor and session.secret and session.csrf_token
    found = store.session(session.secret)
    assert found is not None and found.user.name == "wang" and found.csrf_token == session.csrf_token
    assert store.session("not-a-session") is None
    clock.advance(store.policy.session_duration_s + 1)
    assert store.session(session.secret) is None


def test_logout_and_disable_end_sessions(store: AccessStore) -> None:
    store.add_user("zhao", Role.operator, "1357")
    first = store.login("zhao", "1357", "10.0.0.5")
    second = store.login("zhao", "1357", "10.0.0.6")
    assert store.end_session(first.secret)
    assert store.session(first.secret) is None and store.session(second.secret) is not None
    before, after = store.disable_user("zhao")
    assert before.active and not after.active
    assert store.session(second.secret) is None
    with pytest.raises(BadCredentials):  # a disabled user looks like an unknown one
        store.login("zhao", "1357", "10.0.0.5")


def test_five_wrong_pins_lock_the_user_until_an_admin_unlocks(store: AccessStore, clock: Clock) -> None:
    store.add_user("qian", Role.operator, "9999")
    for _ in range(4):
        with pytest.raises(BadCredentials):
            store.login("qian", "0000", "10.0.0.7")
    with pytest.raises(UserLocked):  # the fifth
        store.login("qian", "0000", "10.0.0.7")
    with pytest.raises(UserLocked):  # the right PIN no longer helps
        store.login("qian", "9999", "10.0.0.8")
    clock.advance(7 * 86400)  # nor does waiting
    with pytest.raises(UserLocked):
        store.login("qian", "9999", "10.0.0.8")
    before, after = store.unlock_user("qian")
    assert before.locked and before.failed_pins == 5
    assert not after.locked and after.failed_pins == 0
    assert store.login("qian", "9999", "10.0.0.8").user.name == "qian"


def test_a_right_pin_resets_the_count(store: AccessStore) -> None:
    store.add_user("sun", Role.operator, "1111")
    for _ in range(4):
        with pytest.raises(BadCredentials):
            store.login("sun", "2222", "10.0.0.9")
    store.login("sun", "1111", "10.0.0.9")
    for _ in range(4):
        with pytest.raises(BadCredentials):
            store.login("sun", "2222", "10.0.0.9")
    assert not store.get_user("sun").locked


def test_wrong_pins_from_one_address_are_limited_then_expire(store: AccessStore, clock: Clock) -> None:
    store.add_user("zhou", Role.operator, "4321")
    for i in range(8):  # spread over unknown users, so no user lock-out is involved
        with pytest.raises(BadCredentials):
            store.login(f"guess{i}", "0000", "192.0.2.1")
    with pytest.raises(AddressLimited) as limited:
        store.login("zhou", "4321", "192.0.2.1")
    assert 0 < limited.value.retry_after_s <= 600
    assert store.login("zhou", "4321", "192.0.2.2")  # another address is not affected
    clock.advance(601)
    assert store.login("zhou", "4321", "192.0.2.1")


def test_unknown_names_raise_not_found(store: AccessStore) -> None:
    with pytest.raises(NotFound):
        store.unlock_user("nobody")
    with pytest.raises(NotFound):
        store.disable_user("nobody")
    with pytest.raises(NotFound):
        store.revoke_token("nothing")


def test_tokens_store_only_a_hash_and_can_be_revoked(store: AccessStore, engine: Engine) -> None:
    secret, token = store.create_token("county-platform", Role.integrator, "cli:root")
    assert secret.startswith("glt_") and len(secret) > 40
    assert token.prefix == secret[:10] and token.role is Role.integrator
    with engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.token_sha256)).scalar_one()
    assert secret not in stored and len(stored) == 64
    found = store.token(secret)
    assert found is not None and found.name == "county-platform"
    assert store.token(secret + "x") is None
    with pytest.raises(NameTaken):
        store.create_token("county-platform", Role.admin, "cli:root")
    with pytest.raises(InvalidInput):
        store.create_token("anon", Role.public, "cli:root")
    before, after = store.revoke_token("county-platform")
    assert before.revoked_at is None and after.revoked_at is not None
    assert store.token(secret) is None
    assert [t.name for t in store.list_tokens()] == ["county-platform"]
