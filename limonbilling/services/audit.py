"""The audit log: every change an agent, customer or system makes, with who, when and from where."""
from dataclasses import dataclass

from ..extensions import db
from ..models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting. Built by the web layer (with the IP) or by the CLI; services only read it."""

    type: str  # agent, customer, system, api
    id: int | None
    label: str
    ip: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls("system", None, label)

    @classmethod
    def of(cls, user, ip: str | None = None) -> "Actor":
        return cls(user.kind, user.id, user.email, ip)


def record(actor: Actor, action: str, target=None, **details) -> AuditEntry:
    """Add an audit entry in the caller's transaction (it commits or rolls back with the change)."""
    entry = AuditEntry(
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        target_type=type(target).__tablename__ if target is not None else None,
        target_id=str(target.id) if target is not None else None,
        details=details or None,
        ip=actor.ip,
    )
    db.session.add(entry)
    return entry
