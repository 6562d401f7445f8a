"""lending.keys on SQLite and PostgreSQL: keys stored hashed, authentication, revocation."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, inspect, select, text, update

from features.errors import InvalidData
from lending.db import transaction
from lending.errors import NotFound
from lending.keys import Principal, authenticate, create_key, list_keys, revoke_key
from lending.tables import ApiKey, Institution, Role


def issue(db, institution="Bank of Ezhou", role="bank"):
    with transaction(db.factory) as session:
        return create_key(session, institution, role)


def who(db, key):
    with transaction(db.factory) as session:
        return authenticate(session, key)


def every_stored_text(db) -> str:
    """Every value of every row of every table, as text."""
    with db.engine.connect() as connection:
        names = inspect(connection).get_table_names()
        rows = [connection.execute(text(f'SELECT * FROM "{name}"')).all() for name in names]
    return "\n".join(repr(tuple(row)) for table in rows for row in table)


def test_keys_are_stored_hashed_never_in_plaintext(db):
    key = issue(db)
    scheme, prefix, secret = key.split("_", 2)
    assert scheme == "ipc" and len(prefix) == 8 and len(secret) >= 43  # 32 random bytes, URL-safe base64
    stored = every_stored_text(db)
    assert key not in stored and secret not in stored
    with transaction(db.factory) as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.key_prefix == prefix
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert "key_hash" not in repr(row) and row.key_hash not in repr(row)


def test_authenticate_returns_the_principal(db):
    key = issue(db, "Hubei Appraisal Co.", "evaluator")
    principal = who(db, key)
    assert isinstance(principal, Principal)
    assert (principal.institution_name, principal.role, principal.sees_all) == (
        "Hubei Appraisal Co.",
        Role.EVALUATOR,
        True,
    )
    assert not who(db, issue(db, "Bank of Ezhou", "bank")).sees_all


def flip(character: str) -> str:
    return "A" if character != "A" else "B"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda k: k[:-1] + flip(k[-1]), id="last-character-changed"),
        pytest.param(lambda k: k[:4] + flip(k[4]) + k[5:], id="prefix-changed"),
        pytest.param(lambda k: k[:-1], id="truncated"),
        pytest.param(lambda k: k + "x", id="extended"),
        pytest.param(lambda k: k.upper(), id="upper-case"),
        pytest.param(lambda k: k.replace("ipc_", "xyz_", 1), id="other-scheme"),
        pytest.param(lambda k: "ipc_" + k.split("_", 2)[1] + "_", id="empty-secret"),
        pytest.param(lambda k: k + "a" * 200, id="too-long"),
        pytest.param(lambda k: "", id="empty"),
        pytest.param(lambda k: None, id="none"),
        pytest.param(lambda k: "ipc_short_x", id="malformed"),
        pytest.param(lambda k: hashlib.sha256(k.encode()).hexdigest(), id="the-stored-hash"),
    ],
)
def test_wrong_keys_are_refused(db, tamper):
    key = issue(db)
    assert who(db, key) is not None
    assert who(db, tamper(key)) is None


def test_keys_sharing_a_prefix_are_told_apart_by_their_hash(db):
    first, second = issue(db, "A", "bank"), issue(db, "B", "admin")
    with transaction(db.factory) as session:  # force a prefix collision
        session.execute(update(ApiKey).values(key_prefix=first.split("_")[1]))
    forged = "ipc_" + first.split("_")[1] + "_" + second.split("_", 2)[2]
    assert who(db, first).institution_name == "A"
    assert who(db, forged) is None


def test_revoked_keys_are_refused_and_others_still_work(db):
    first, second = issue(db), issue(db)
    with transaction(db.factory) as session:
        revoked = revoke_key(session, who(db, first).key_id)
    assert revoked.revoked_at is not None
    assert who(db, first) is None
    assert who(db, second).institution_name == "Bank of Ezhou"
    with transaction(db.factory) as session:  # revoking again keeps the first revocation time
        assert revoke_key(session, revoked.key_id).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound, match="no API key with id 999"), transaction(db.factory) as session:
        revoke_key(session, 999)


def test_one_institution_per_name_and_keys_listed_without_secrets(db):
    issue(db, " Bank of Ezhou ", "bank")
    issue(db, "Bank of Ezhou", "admin")
    issue(db, "Hubei Appraisal Co.", "evaluator")
    with transaction(db.factory) as session:
        assert session.scalar(select(func.count()).select_from(Institution)) == 2
        listed = list_keys(session, "Bank of Ezhou")
        assert [(k.institution_name, k.role) for k in listed] == [
            ("Bank of Ezhou", Role.BANK),
            ("Bank of Ezhou", Role.ADMIN),
        ]
        assert len(list_keys(session)) == 3
        assert not any(hasattr(k, "key_hash") for k in listed)


@pytest.mark.parametrize(
    ("institution", "role", "message"),
    [
        ("Bank of Ezhou", "teller", "role: expected one of bank, evaluator, admin; got 'teller'"),
        ("   ", "bank", "institution: expected a name of 1 to 200 characters"),
        ("x" * 201, "bank", "institution: expected a name of 1 to 200 characters"),
        ("", "root", r"2 problem\(s\)"),
    ],
)
def test_bad_key_requests_are_refused(db, institution, role, message):
    with pytest.raises(InvalidData, match=message), transaction(db.factory) as session:
        create_key(session, institution, role)
    with transaction(db.factory) as session:
        assert session.scalar(select(func.count()).select_from(ApiKey)) == 0
