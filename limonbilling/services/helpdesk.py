"""Tickets and chats: opening one in a department runs the rule-6 charge, replies never do; the "Account
verification" channel (DT) is always open and always free."""
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import Agent, Conversation, ConversationChannel, Customer, Department, Message
from . import ServiceError, ValidationFailed, attachments, audit, charging, customers, entitlements, settings
from .attachments import Upload


def _author(user: Agent | Customer) -> dict:
    name = user.name if isinstance(user, Agent) else user.display_name
    return {"author_type": user.kind, "author_id": user.id, "author_name": name}


def _new_conversation(customer: Customer, kind: str, subject: str, body: str, uploads: list[Upload],
                      **place) -> Conversation:
    """The conversation with its first message and files, checked all at once; `place` is its department or
    its channel."""
    errors: dict[str, list[str]] = {}
    subject = (subject or "").strip()
    body = (body or "").strip()
    if kind == "ticket" and not subject:
        errors["subject"] = [_("Write a subject.")]
    if len(subject) > 200:
        errors["subject"] = [_("At most %(n)d characters.", n=200)]
    if not body:
        errors["body"] = [_("Write your message.")]
    try:
        checked = attachments.check(uploads)
    except ValidationFailed as refused:
        errors |= refused.errors
    if errors:
        raise ValidationFailed(errors)
    moment = now()
    conversation = Conversation(kind=kind, customer_id=customer.id, subject=subject, status="open",
                                created_at=moment, updated_at=moment, **place)
    message = Message(body=body, created_at=moment, **_author(customer))
    conversation.messages.append(message)
    db.session.add(conversation)
    attachments.attach(message, checked)
    db.session.flush()
    return conversation


def open_conversation(customer: Customer, department: Department, kind: str, subject: str, body: str,
                      uploads: list[Upload] = ()) -> Conversation:
    """Open a ticket or start a chat, charged once by rule 6 in the same transaction.

    Refusals (department not enabled, not enough credits, a file not allowed) raise, and the caller rolls
    back: no conversation exists without its charge.
    """
    if kind == "chat" and not (subject or "").strip():
        subject = _("Chat in %(department)s", department=department.name)
    conversation = _new_conversation(customer, kind, subject, body, list(uploads), department_id=department.id)
    if settings.vip_support_enabled():
        result = charging.charge_usage(customer.id, department.id, kind, f"limonbilling-{kind}-{conversation.id}")
        conversation.usage_id = result.usage_id
    elif not department.active:
        raise charging.DepartmentNotEnabled(department.id, department.name)
    audit.record(audit.Actor.of(customer), f"{kind}.open", conversation, department=department.name)
    return conversation


def open_verification(customer: Customer, subject: str, body: str, uploads: list[Upload] = ()) -> Conversation:
    """A ticket in the "Account verification" channel (DT), to send identity documents: open to every customer,
    with or without departments, packages or the Paid VIP Support System, and never charged."""
    conversation = _new_conversation(customer, "ticket", subject, body, list(uploads),
                                     channel=ConversationChannel.VERIFICATION, department_id=None)
    audit.record(audit.Actor.of(customer), "verification.open", conversation)
    return conversation


def reply(conversation: Conversation, author: Agent | Customer, body: str, uploads: list[Upload] = ()) -> Message:
    """Add a message, with files or text or both; never charged (rule 6). A closed conversation reopens on a
    customer reply."""
    body = (body or "").strip()
    if not body and not uploads:
        raise ValidationFailed({"body": [_("Write your message.")]})
    checked = attachments.check(list(uploads))
    moment = now()
    message = Message(body=body, created_at=moment, **_author(author))
    conversation.messages.append(message)
    attachments.attach(message, checked)
    conversation.status = "answered" if author.kind == "agent" else "open"
    conversation.updated_at = moment
    return message


def verify_identity(conversation: Conversation, actor: audit.Actor) -> bool:
    """An agent marks the customer of a verification ticket identity-verified (once: True only the first time)."""
    if not conversation.is_verification:
        raise ServiceError("not_verification", _("Only a ticket in Account verification can verify an identity."))
    return customers.set_identity_verified(conversation.customer, True, actor, conversation_id=conversation.id)


def close(conversation: Conversation, actor: audit.Actor) -> None:
    conversation.status = "closed"
    conversation.updated_at = now()
    audit.record(actor, f"{conversation.kind}.close", conversation)


def customer_conversations(customer: Customer, kind: str):
    return (
        select(Conversation)
        .where(Conversation.customer_id == customer.id, Conversation.kind == kind)
        .order_by(Conversation.id.desc())
    )


def agent_conversations(kind: str, status: str | None = None, channel: str | None = None):
    statement = select(Conversation).where(Conversation.kind == kind).order_by(Conversation.id.desc())
    if status:
        statement = statement.where(Conversation.status == status)
    if channel:
        statement = statement.where(Conversation.channel == channel)
    return statement


def department_choices(customer: Customer) -> list[tuple[Department, str]]:
    """Active departments with a word on what a new request costs the customer there."""
    departments = db.session.scalars(select(Department).where(Department.active).order_by(Department.name))
    if not settings.vip_support_enabled():
        return [(department, _("free")) for department in departments]
    access = {item.department.id: item for item in entitlements.entitlement(customer).departments}
    choices = []
    for department in departments:
        item = access.get(department.id)
        if item is None or not item.usable and item.cost == 0:
            label = _("not enabled — buy a package")
        elif item.cost == 0:
            label = _("included")
        else:
            label = ngettext("%(num)d credit", "%(num)d credits", item.cost)
        choices.append((department, label))
    return choices
