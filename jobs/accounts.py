"""Local accounts: who may sign in, with what role, to which jobs.

Passwords are kept as Argon2id hashes (``argon2-cffi``'s defaults, parameters
in the hash, re-hashed on sign-in when those defaults change). Bearer tokens
and session cookies are 32 random bytes; only their SHA-256 is stored, which
is enough for a secret that is never guessable (unlike a password, it needs
no slow hash). Every change to an account is an audit event in the global
chain, and so is every failed sign-in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.base import utcnow
from db.models import ApiToken, JobGrant, User, UserRole, WebSession
from worker import errors

MIN_PASSWORD_LENGTH = 12
NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")
TOKEN_PREFIX = "sieve_"  # so a leaked token is recognisable in logs and scanners

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the user's row, read once per request."""

    user_id: int
    name: str
    role: UserRole
    via: str  # "session" or "token"

    @property
    def is_admin(self) -> bool:
        return self.role is UserRole.admin


def check_name(name: str) -> str:
    """A user name: 1–64 lower-case letters, digits and ``._-@``."""
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= 64 or not set(cleaned) <= NAME_CHARACTERS:
        raise errors.UsageError(
            f"user name {name!r}: use 1 to 64 lower-case letters, digits, '.', '_', '-' or '@'"
        )
    return cleaned


def check_password(password: str) -> str:
    """Refuse a password too short to resist guessing (NIST SP 800-63B: length, not rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.UsageError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def find_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise errors.NotFoundError(f"no user named {name!r}")
    return user


def _account_event(session: Session, action: str, actor: str, details: dict[str, object]) -> None:
    audit.append_event(session, audit.EventDraft(action=action, actor=actor, details=details))


def add_user(session: Session, name: str, role: str, password: str, actor: str) -> User:
    """Create an account; the caller commits."""
    name = check_name(name)
    try:
        user_role = UserRole(role)
    except ValueError as exc:
        raise errors.UsageError(f"role {role!r}: one of admin, reviewer, auditor") from exc
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise errors.UsageError(f"a user named {name!r} exists already")
    user = User(name=name, role=user_role, password_hash=hash_password(password), created_by=actor)
    session.add(user)
    session.flush()
    _account_event(session, "user.created", actor, {"user": name, "role": user_role.value})
    return user


def set_disabled(session: Session, name: str, disabled: bool, actor: str) -> bool:
    """Disable or re-enable an account; its sessions end. True when something changed."""
    user = find_user(session, name)
    if (user.disabled_at is not None) == disabled:
        return False
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        end_sessions(session, user.id)
    _account_event(session, "user.disabled" if disabled else "user.enabled", actor, {"user": name})
    return True


def reset_password(session: Session, name: str, password: str, actor: str) -> None:
    """Set a new password and end the user's sessions (their tokens stay)."""
    user = find_user(session, name)
    user.password_hash = hash_password(password)
    end_sessions(session, user.id)
    _account_event(session, "user.password_reset", actor, {"user": name})


def create_token(session: Session, name: str, label: str, actor: str) -> str:
    """A new bearer token for user ``name``; the only time the token itself exists."""
    user = find_user(session, name)
    if user.disabled_at is not None:
        raise errors.UsageError(f"user {name!r} is disabled")
    token = new_secret()
    session.add(ApiToken(user_id=user.id, label=label[:100], token_sha256=secret_sha256(token)))
    session.flush()
    _account_event(session, "token.created", actor, {"user": name, "label": label[:100]})
    return token


def grant_job(session: Session, name: str, job_id: int, actor: str) -> bool:
    """Let a reviewer read job ``job_id``. True when the grant is new."""
    user = find_user(session, name)
    exists = session.scalar(
        select(JobGrant.id).where(JobGrant.user_id == user.id, JobGrant.job_id == job_id)
    )
    if exists is not None:
        return False
    session.add(JobGrant(user_id=user.id, job_id=job_id, granted_by=actor))
    session.flush()
    audit.append_event(
        session,
        audit.EventDraft(action="grant.added", actor=actor, job_id=job_id, details={"user": name}),
    )
    return True


def revoke_grant(session: Session, name: str, job_id: int, actor: str) -> bool:
    """Take a reviewer's access to job ``job_id`` away. True when there was a grant."""
    user = find_user(session, name)
    grant = session.scalar(
        select(JobGrant).where(JobGrant.user_id == user.id, JobGrant.job_id == job_id)
    )
    if grant is None:
        return False
    session.delete(grant)
    audit.append_event(
        session,
        audit.EventDraft(
            action="grant.revoked", actor=actor, job_id=job_id, details={"user": name}
        ),
    )
    return True


def tokens_of(session: Session, name: str) -> list[ApiToken]:
    user = find_user(session, name)
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    )


def revoke_token(session: Session, token_id: int, actor: str) -> bool:
    """Stop a token working (it stays listed, revoked). True when it was live."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise errors.NotFoundError(f"no token with id {token_id}")
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    _account_event(session, "token.revoked", actor, {"user": token.user.name, "token_id": token_id})
    return True


def granted_job_ids(session: Session, user_id: int) -> set[int]:
    return set(session.scalars(select(JobGrant.job_id).where(JobGrant.user_id == user_id)))


def may_read_content(session: Session, principal: Principal, job_id: int) -> bool:
    """Admins read every job; reviewers the jobs granted to them; auditors no content."""
    if principal.role is UserRole.admin:
        return True
    if principal.role is UserRole.reviewer:
        return job_id in granted_job_ids(session, principal.user_id)
    return False


def may_see_job(session: Session, principal: Principal, job_id: int) -> bool:
    """Whether the job's name, counts and reports are visible: content readers and auditors."""
    return principal.role is UserRole.auditor or may_read_content(session, principal, job_id)


# --- signing in ------------------------------------------------------------------


def verify_password(session: Session, name: str, password: str) -> User | None:
    """The enabled user whose password this is, or None (the same for every failure).

    A wrong name costs as much time as a wrong password, so the answer's timing
    does not tell which names exist.
    """
    user = session.scalar(select(User).where(User.name == name))
    stored = user.password_hash if user is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


_DUMMY_HASH = _hasher.hash("not a password anyone has" * 2)


def open_session(
    session: Session, user: User, address: str | None, lifetime: dt.timedelta
) -> tuple[str, WebSession]:
    """A new browser session; returns the cookie value (kept only hashed)."""
    cookie = new_secret()
    web_session = WebSession(
        user_id=user.id,
        cookie_sha256=secret_sha256(cookie),
        csrf_token=secrets.token_urlsafe(32),
        address=(address or "")[:64] or None,
        expires_at=utcnow() + lifetime,
    )
    session.add(web_session)
    session.flush()
    return cookie, web_session


def end_sessions(session: Session, user_id: int) -> None:
    now = utcnow()
    for web_session in session.scalars(
        select(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    ):
        web_session.ended_at = now


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def session_for_cookie(session: Session, cookie: str) -> WebSession | None:
    """The live session this cookie opened, or None (expired, ended, or its user disabled)."""
    web_session = session.scalar(
        select(WebSession).where(WebSession.cookie_sha256 == secret_sha256(cookie))
    )
    if web_session is None or web_session.ended_at is not None:
        return None
    if _aware(web_session.expires_at) <= utcnow() or web_session.user.disabled_at is not None:
        return None
    return web_session


def user_for_token(session: Session, token: str) -> User | None:
    """The enabled user a live bearer token belongs to, or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == secret_sha256(token)))
    if row is None or row.revoked_at is not None or row.user.disabled_at is not None:
        return None
    return row.user


def principal_of(user: User, via: str) -> Principal:
    return Principal(user_id=user.id, name=user.name, role=user.role, via=via)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, for CSRF tokens."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
