"""API keys: issued once in plaintext, stored as a SHA-256 hash, looked up by a public prefix.

A key reads ``ipc_<prefix>_<secret>``: ``prefix`` is 8 hex characters (stored in clear, to find the row
without scanning), ``secret`` 32 random bytes from `secrets` (43 URL-safe characters). The database keeps
the SHA-256 of the whole key, compared in constant time. A fast hash is right here, unlike for passwords:
a slow hash (bcrypt, scrypt, Argon2) protects guessable secrets by making each guess expensive, but a
256-bit random secret cannot be guessed at any speed (2**256 tries), and each guess would cost every API
request tens of milliseconds. No salt is needed either: every key is unique and random, so precomputed
tables are of no use.

The functions take a session and never commit: run them inside `lending.db.transaction`.

>>> from lending.db import make_engine, migrate, session_factory, transaction
>>> engine = make_engine("sqlite://"); _ = migrate(engine); factory = session_factory(engine)
>>> with transaction(factory) as session:
...     key = create_key(session, "Bank of Ezhou", "bank")
>>> key.startswith("ipc_"), len(key)
(True, 56)
>>> with transaction(factory) as session:
...     who = authenticate(session, key)
...     nobody = authenticate(session, key[:-1] + ("A" if key[-1] != "A" else "B"))
>>> who.institution_name, who.role, nobody
('Bank of Ezhou', <Role.BANK: 'bank'>, None)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from features.errors import InvalidData, Problem
from lending.errors import NotFound
from lending.tables import ApiKey, Institution, Role, utcnow

SCHEME = "ipc"
PREFIX_CHARS = 8
SECRET_BYTES = 32
MAX_KEY_CHARS = 128  # longer input is refused before hashing
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its institution and its role."""

    key_id: int
    institution_id: int
    institution_name: str
    role: Role

    @property
    def sees_all(self) -> bool:
        """Evaluators and admins read every institution's records; a bank only its own."""
        return self.role in (Role.EVALUATOR, Role.ADMIN)


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: everything but the secret (and its hash)."""

    key_id: int
    prefix: str
    institution_name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    """SHA-256 hex of the whole key, as stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as e:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidData([Problem("role", f"one of {allowed}", role)], what="API key") from e


def _institution(session: Session, name: str) -> Institution:
    """The institution called `name`, created when missing (safe against a concurrent creation)."""
    found = session.scalar(select(Institution).where(Institution.name == name))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            institution = Institution(name=name)
            session.add(institution)
        return institution
    except IntegrityError:  # created by a concurrent transaction since the select above
        return session.scalars(select(Institution).where(Institution.name == name)).one()


def create_key(session: Session, institution_name: str, role: Role | str) -> str:
    """Issue a key for `institution_name` (created if needed) with `role`, and return it in plaintext:
    this is the only time it exists outside the caller's hands."""
    problems = []
    name = institution_name.strip() if isinstance(institution_name, str) else ""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        problems.append(
            Problem("institution", f"a name of 1 to {MAX_NAME_CHARS} characters", institution_name)
        )
    try:
        role = parse_role(role)
    except InvalidData as e:
        problems.extend(e.problems)
    if problems:
        raise InvalidData(problems, what="API key")

    institution = _institution(session, name)
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    key = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    session.add(ApiKey(institution=institution, role=role, key_prefix=prefix, key_hash=hash_key(key)))
    session.flush()
    return key


def authenticate(session: Session, key: str | None) -> Principal | None:
    """The principal of a valid, unrevoked key; None for anything else (missing, malformed, unknown,
    wrong secret, revoked), with no hint of which."""
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
        return None
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != SCHEME or len(parts[1]) != PREFIX_CHARS:
        return None
    digest = hash_key(key)
    rows = session.execute(_CANDIDATES, {"prefix": parts[1]}).all()
    found = None
    for row in rows:  # compare every candidate: time does not tell which matched
        if hmac.compare_digest(row.key_hash, digest):
            found = row
    if found is None or found.revoked_at is not None:
        return None
    return Principal(found.id, found.institution_id, found.name, found.role)


# The keys with a prefix, as plain rows (no ORM objects: this runs on every request).
_CANDIDATES = (
    select(
        ApiKey.id, ApiKey.institution_id, Institution.name, ApiKey.role, ApiKey.key_hash, ApiKey.revoked_at
    )
    .join(Institution)
    .where(ApiKey.key_prefix == bindparam("prefix"))
)


def revoke_key(session: Session, key_id: int) -> KeyInfo:
    """Revoke key `key_id` from now on (a key already revoked keeps its first revocation time)."""
    api_key = session.get(ApiKey, key_id)
    if api_key is None:
        raise NotFound(f"no API key with id {key_id!r}")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        session.flush()
    return _info(api_key)


def list_keys(session: Session, institution_name: str | None = None) -> list[KeyInfo]:
    """Every key (or those of one institution), oldest first, without secrets."""
    query = select(ApiKey).join(Institution).order_by(ApiKey.id)
    if institution_name is not None:
        query = query.where(Institution.name == institution_name.strip())
    return [_info(k) for k in session.scalars(query)]


def _info(api_key: ApiKey) -> KeyInfo:
    return KeyInfo(
        api_key.id,
        api_key.key_prefix,
        api_key.institution.name,
        api_key.role,
        api_key.created_at,
        api_key.revoked_at,
    )
