"""API tokens: made by agents with `settings`, shown once, stored as a SHA-256 hash, revocable."""
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update

from ..clock import now
from ..extensions import db
from ..models import ApiScope, ApiToken
from . import ValidationFailed, accounts, audit

PREFIX = "lb_"
LAST_USED_PRECISION = timedelta(minutes=5)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str, scopes: list[str], actor: audit.Actor) -> tuple[ApiToken, str]:
    """A new token (an owner's job: it acts with billing and customer rights); the plain value is returned once
    and never stored."""
    accounts.require_owner(actor)
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Name the token after the system that uses it.")]
    scopes = [scope for scope in ApiScope if scope in scopes]
    if not scopes:
        errors["scopes"] = [_("Choose at least one scope.")]
    if errors:
        raise ValidationFailed(errors)
    plain = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=_digest(plain), prefix=plain[:10], scopes=" ".join(scopes),
                     created_at=now(), created_by_agent_id=actor.id if actor.type == "agent" else None)
    db.session.add(token)
    db.session.flush()
    audit.record(actor, "api_token.create", token, name=name, scopes=scopes)
    return token, plain


@dataclass(frozen=True)
class Caller:
    """Who an API request comes from: a live token's id, name and scopes."""

    id: int
    name: str
    scopes: tuple[str, ...]


_tokens = ApiToken.__table__.c
_LIVE_TOKEN = select(_tokens.id, _tokens.name, _tokens.scopes, _tokens.last_used_at).where(
    _tokens.token_hash == bindparam("token_hash"), _tokens.revoked_at.is_(None))


def authenticate(plain: str) -> Caller | None:
    """The live token with this value, or None (unknown or revoked).

    Every API request starts here, so it reads only the columns it needs.
    """
    if not plain or not plain.startswith(PREFIX):
        return None
    found = db.session.execute(_LIVE_TOKEN, {"token_hash": _digest(plain)}).first()
    if found is None:
        return None
    moment = now()
    if found.last_used_at is None or moment - found.last_used_at > LAST_USED_PRECISION:
        # Not on every request: the row would serialise concurrent calls.
        db.session.execute(update(ApiToken.__table__).where(_tokens.id == found.id).values(last_used_at=moment))
    return Caller(found.id, found.name, tuple(found.scopes.split()))


def revoke(token: ApiToken, actor: audit.Actor) -> None:
    if token.revoked_at is None:
        token.revoked_at = now()
        audit.record(actor, "api_token.revoke", token, name=token.name)


def list_tokens() -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())))
