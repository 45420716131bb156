"""KVKK requests (the Turkish personal data law, issue 16): a customer downloads everything we hold about them,
and asks for erasure, which an agent approves or rejects.

Both walk the same map of tables: every table that refers to a customer is in `EXPORTED` (where its rows go in
the archive) and in `ERASURE` (what erasure does to them); tests/unit/test_privacy.py fails when a table with a
`customer_id` column, or a foreign key to customers, is missing from either. Erasure anonymises personal data
and keeps what the tax law requires: invoices (their buyer snapshot is a tax document, kept for
`retention_years`, then `anonymise_expired_invoices` blanks it), the credit ledger, balances, payments and
refunds (they hold amounts, not personal data), and the orders, for accounting.
"""
import io
import json
import secrets
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import Table, delete, or_, select, update

from ..clock import now
from ..extensions import db
from ..formatting import format_money
from ..models import (
    ActivationRequest,
    ActivationState,
    ActorType,
    Attachment,
    AuditEntry,
    CancellationRequest,
    Conversation,
    Customer,
    CustomerNote,
    ErasureRequest,
    ErasureState,
    Invoice,
    MarketingConsent,
    Message,
    MessageAuthor,
    NotificationState,
    Order,
    OrderContract,
    Payment,
    PaymentState,
    RateLimitCounter,
    Refund,
)
from ..models.lifecycle import REFUNDS_IN_FLIGHT
from . import ServiceError, ValidationFailed, attachments, audit, balance, decisions, idempotency, ledger, settings

ERASED = "[erased]"
MAX_REASON_LENGTH = 2000


def placeholder_email(customer_id: int) -> str:
    """The address an erased customer keeps: unique (the column is) and undeliverable (`.invalid`, RFC 2606)."""
    return f"erased-{customer_id}@invalid"


# --- what refers to a customer ------------------------------------------------------------------------------

# Rows reached through a customer's rows (the parent table, the child table, the child's column naming the parent).
CHILDREN: dict[str, list[tuple[str, str]]] = {
    "orders": [("payments", "order_id"), ("refunds", "order_id")],
    "conversations": [("messages", "conversation_id")],
    "messages": [("attachments", "message_id")],
}

# Each table that refers to a customer, and the file of the archive its rows go to (the customer's own row is
# the profile).
EXPORTED: dict[str, str] = {
    "customers": "profile.json",
    "customer_departments": "departments.json",
    "customer_notes": "agent_notes.json",
    "orders": "orders.json",
    "invoices": "invoices.json",
    "ledger_entries": "credit_ledger.json",
    "grants": "grants.json",
    "subscription_periods": "subscription_periods.json",
    "usages": "usages.json",
    "account_balances": "account_balances.json",
    "balance_entries": "account_balance_entries.json",
    "conversations": "tickets_and_chats.json",
    "notifications": "notifications.json",
    "activation_requests": "activation_requests.json",
    "cancellation_requests": "cancellation_requests.json",
    "erasure_requests": "erasure_requests.json",
    "marketing_consents": "marketing_consents.json",
}

# Columns that are not the customer's data but keys to their account: never in an archive.
SECRET_COLUMNS = {
    "customers": {"password_hash", "session_version", "totp_secret", "recovery_code_hashes", "totp_last_step"},
    "notifications": {"claim_token"},
}


def _customer_column(table: Table):
    return table.c.id if table.name == "customers" else table.c.customer_id


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(table: Table, condition) -> list[dict]:
    hidden = SECRET_COLUMNS.get(table.name, set())
    rows = []
    for row in db.session.execute(select(table).where(condition).order_by(*table.primary_key.columns)).mappings():
        data = {key: _plain(value) for key, value in row.items() if key not in hidden}
        if data.get("sensitive"):  # a mail holding a sign-in link: the link stays out of the archive
            data["body_text"] = data["body_html"] = None
        for child, column in CHILDREN.get(table.name, []):
            child_table = db.metadata.tables[child]
            data[child] = _rows(child_table, child_table.c[column] == row["id"])
        rows.append(data)
    return rows


def _record_ids(customer_id: int) -> dict[str, list[str]]:
    """The ids of the customer's rows by table (children included), as the audit log names its targets."""
    ids: dict[str, list[str]] = {}

    def walk(table: Table, condition) -> None:
        found = [str(value) for value in db.session.scalars(select(table.c.id).where(condition))]
        ids.setdefault(table.name, []).extend(found)
        for child, column in CHILDREN.get(table.name, []):
            child_table = db.metadata.tables[child]
            if found:
                walk(child_table, child_table.c[column].in_([int(value) for value in found]))

    for name in EXPORTED:
        table = db.metadata.tables[name]
        if "id" in table.c:
            walk(table, _customer_column(table) == customer_id)
    return ids


def _about(customer_id: int):
    """The audit entries about the customer: what they did, and what was done to their records."""
    targets = [(AuditEntry.target_type == name) & AuditEntry.target_id.in_(ids)
               for name, ids in _record_ids(customer_id).items() if ids]
    return or_((AuditEntry.actor_type == ActorType.CUSTOMER) & (AuditEntry.actor_id == customer_id), *targets)


# --- the archive --------------------------------------------------------------------------------------------

def collect(customer: Customer) -> dict[str, list[dict]]:
    """Everything we hold about the customer, by archive file: every table of `EXPORTED` with its children
    (payments and refunds in their orders, messages and attachments in their conversations), and the audit
    entries about them (their sign-ins and sessions, their requests, what agents did to their records)."""
    files = {}
    for name, file_name in EXPORTED.items():
        table = db.metadata.tables[name]
        files[file_name] = _rows(table, _customer_column(table) == customer.id)
    audit_table = db.metadata.tables["audit_log"]
    files["audit_log.json"] = _rows(audit_table, _about(customer.id))
    return files


def readme(customer: Customer, moment: datetime) -> str:
    lines = [
        _("Your personal data held by %(company)s", company=settings.get("company_name")),
        _("Prepared on %(moment)s (UTC) for customer %(id)d.", moment=moment.isoformat(timespec="seconds"),
          id=customer.id),
        "",
        _("Each JSON file holds one kind of record; amounts are in minor units (kuruş, cents), moments in UTC."),
        _("profile.json holds your account; passwords and two-factor secrets are never included."),
        _("orders.json holds your orders, each with its payments and refunds; invoices.json your invoices."),
        _("credit_ledger.json and account_balance_entries.json hold every change of your credits and balance."),
        _("tickets_and_chats.json holds your tickets and chats with their messages (attached files are listed, "
          "not included)."),
        _("notifications.json holds the e-mails and SMS we sent about you (links to sign in are left out)."),
        _("audit_log.json holds the log entries about you: sign-ins, requests and changes to your records."),
    ]
    return "\n".join(lines) + "\n"


def export_archive(customer: Customer, password: str, actor: audit.Actor) -> bytes:
    """The ZIP the customer downloads (one JSON file per kind of record and a README.txt). The password proves
    it is the customer and not a stolen session; every download is in the audit log."""
    if not customer.check_password(password or ""):
        raise ValidationFailed({"password": [_("This is not your current password.")]})
    moment = now()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme(customer, moment))
        for file_name, rows in collect(customer).items():
            archive.writestr(file_name, json.dumps(rows, ensure_ascii=False, indent=2, sort_keys=True))
    audit.record(actor, "customer.data_export", customer)
    return buffer.getvalue()


# --- erasure requests ---------------------------------------------------------------------------------------

def pending_request(customer_id: int) -> ErasureRequest | None:
    return db.session.scalar(select(ErasureRequest).where(ErasureRequest.customer_id == customer_id,
                                                          ErasureRequest.state == ErasureState.PENDING))


def latest_request(customer: Customer) -> ErasureRequest | None:
    return db.session.scalar(select(ErasureRequest).where(ErasureRequest.customer_id == customer.id)
                             .order_by(ErasureRequest.id.desc()).limit(1))


def money_in_flight(customer_id: int) -> bool:
    """Whether money of the customer is on its way: a card attempt the bank has not answered or that may still
    be paid (`Payment.rechecked`: reconciliation would take it for an account that signs in no more), or a
    refund not settled. Erasure waits for it, so the bank's answer still finds whom it concerns."""
    of_customer = select(Order.id).where(Order.customer_id == customer_id)
    attempt = select(Payment.id).where(Payment.order_id.in_(of_customer),
                                       (Payment.state == PaymentState.PENDING) | Payment.rechecked_at(now()))
    refund = select(Refund.id).where(Refund.order_id.in_(of_customer), Refund.state.in_(REFUNDS_IN_FLIGHT))
    return db.session.scalar(select(attempt.exists() | refund.exists()))


def _refuse_money_in_flight(customer_id: int) -> None:
    if money_in_flight(customer_id):
        raise ServiceError("money_in_flight", _(
            "A payment or a refund of this account is still on its way to or from the bank. The data can be "
            "erased once it has settled; please try again later."))


def _refuse_money_held(customer_id: int) -> None:
    """Money in the account balance is the customer's: an erased account signs in no more and nobody could ask
    for it, so it is spent or paid back (an agent's adjustment, with the transfer as its reason) first."""
    held = balance.amounts(db.session.get(Customer, customer_id))
    if held:
        raise ServiceError("balance_held", _(
            "The account balance still holds %(amount)s. Spend it, or ask us to pay it back, before the data is "
            "erased: an erased account can no longer reach it.",
            amount=", ".join(format_money(minor, currency) for currency, minor in held.items())))


def _refuse_activation_waiting(customer_id: int) -> None:
    """The customer says a transfer was sent (the activation form): the money may be at the seller's bank, and
    an agent answers the request before the account that would receive the package is erased."""
    waiting = select(ActivationRequest.id).where(ActivationRequest.customer_id == customer_id,
                                                 ActivationRequest.state == ActivationState.PENDING)
    if db.session.scalar(waiting.limit(1)) is not None:
        raise ServiceError("activation_waiting", _(
            "An activation request of this account (a bank transfer the customer says they sent) is waiting for "
            "an answer. Approve or reject it first; then the data can be erased."))


def request_erasure(customer: Customer, reason: str, password: str, actor: audit.Actor) -> ErasureRequest:
    """Ask for erasure (one waiting request per customer; the partial unique index keeps it so)."""
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not customer.check_password(password or ""):
        errors["password"] = [_("This is not your current password.")]
    if len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = [_("Write at most %(max)d characters.", max=MAX_REASON_LENGTH)]
    if errors:
        raise ValidationFailed(errors)
    customer = ledger.lock_customer(customer.id)
    if pending_request(customer.id) is not None:
        raise ServiceError("already_requested", _("Your erasure request is already waiting for our answer."))
    _refuse_money_in_flight(customer.id)
    _refuse_money_held(customer.id)
    request = ErasureRequest(customer_id=customer.id, reason=reason or None, state=ErasureState.PENDING,
                             created_at=now())
    db.session.add(request)
    db.session.flush()
    audit.record(actor, "erasure.request", request)
    return request


def requests(state: str | None = ErasureState.PENDING):
    statement = select(ErasureRequest).order_by(ErasureRequest.id.desc())
    return statement.where(ErasureRequest.state == state) if state else statement


def reject(request_id: int, note: str, actor: audit.Actor) -> ErasureRequest:
    if not (note or "").strip():
        raise ValidationFailed({"note": [_("Tell the customer why the request is rejected.")]})
    request = decisions.decide(ErasureRequest, request_id, ErasureState.REJECTED, actor, note=note)
    audit.record(actor, "erasure.reject", request)
    return request


def approve(request_id: int, actor: audit.Actor) -> ErasureRequest:
    """Erase the customer's personal data (`erase`), once: the request is locked and must still be waiting."""
    request = decisions.decide(ErasureRequest, request_id, ErasureState.APPROVED, actor, note="")
    # Locks in the one order every action takes (the cancellation requests, orders by id, the activation requests,
    # then the customer): a cancellation approval (its request, the renewals' orders, then the customer), a refund
    # to the balance, an order action or an activation approval (its request, then the customer) waits for the
    # erasure, or the erasure for it, and they never deadlock.
    db.session.execute(select(CancellationRequest.id).where(CancellationRequest.customer_id == request.customer_id)
                       .order_by(CancellationRequest.id).with_for_update()).all()
    db.session.execute(select(Order.id).where(Order.customer_id == request.customer_id).order_by(Order.id)
                       .with_for_update()).all()
    db.session.execute(select(ActivationRequest.id).where(ActivationRequest.customer_id == request.customer_id)
                       .order_by(ActivationRequest.id).with_for_update()).all()
    customer = ledger.lock_customer(request.customer_id)
    _refuse_money_in_flight(customer.id)
    _refuse_money_held(customer.id)
    _refuse_activation_waiting(customer.id)
    counts = erase(customer)
    audit.record(actor, "erasure.approve", request)
    audit.record(actor, "customer.erase", db.session.get(Customer, request.customer_id), **counts)
    return request


# --- erasure ------------------------------------------------------------------------------------------------

def _personal_values(customer: Customer) -> list[str]:
    values = [customer.email, customer.phone, customer.first_name, customer.last_name, customer.full_name,
              customer.national_id, customer.company_name, customer.tax_number, customer.tax_office,
              customer.billing_address]
    return sorted({value.strip().lower() for value in values if value and len(value.strip()) >= 2}, key=len,
                  reverse=True)


def _scrub(value, personal: list[str]):
    """The JSON value with every string that names the customer (or holds an e-mail address) replaced."""
    if isinstance(value, dict):
        return {key: _scrub(item, personal) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, personal) for item in value]
    if isinstance(value, str) and ("@" in value or any(item in value.lower() for item in personal)):
        return ERASED
    return value


def _keep(customer_id: int) -> int:
    """Records the law keeps (money, tax) or that hold no personal data: nothing to do."""
    return 0


def _erase_customer(customer_id: int) -> int:
    customer = db.session.get(Customer, customer_id)
    customer.first_name, customer.last_name = ERASED, f"#{customer_id}"
    customer.email, customer.phone = placeholder_email(customer_id), ""
    customer.national_id = customer.company_name = customer.tax_number = customer.tax_office = None
    customer.billing_address = None
    customer.password_hash = "erased$" + secrets.token_hex(16)  # no password hashes to this: unusable
    customer.totp_secret = customer.totp_enabled_at = customer.recovery_code_hashes = None
    customer.low_credit_threshold = None
    customer.erased_at = now()
    customer.end_sessions()
    return 1


def _delete_rows(model) -> Callable[[int], int]:
    def erase_rows(customer_id: int) -> int:
        return db.session.execute(delete(model).where(model.customer_id == customer_id)).rowcount
    return erase_rows


def _blank(model, **values) -> Callable[[int], int]:
    def erase_columns(customer_id: int) -> int:
        return db.session.execute(update(model).where(model.customer_id == customer_id).values(**values)).rowcount
    return erase_columns


def _erase_conversations(customer_id: int) -> int:
    """Subjects and every message body (agents' replies quote and greet the customer); the attached files
    (identity documents among them) are deleted with their rows, from disk once the erasure is committed."""
    conversations = select(Conversation.id).where(Conversation.customer_id == customer_id)
    messages = select(Message.id).where(Message.conversation_id.in_(conversations))
    files = db.session.scalars(select(Attachment).where(Attachment.message_id.in_(messages))).all()
    attachments.remove_after_commit([attachments.path_of(attachment) for attachment in files])
    db.session.execute(delete(Attachment).where(Attachment.message_id.in_(messages)))
    db.session.execute(update(Message).where(Message.id.in_(messages)).values(body=ERASED))
    db.session.execute(update(Message).where(Message.id.in_(messages), Message.author_type == MessageAuthor.CUSTOMER)
                       .values(author_name=ERASED))
    return db.session.execute(update(Conversation).where(Conversation.customer_id == customer_id)
                              .values(subject=ERASED)).rowcount


def _erase_notifications(customer_id: int) -> int:
    """Recipients and contents; a message not sent yet is never sent (it is marked failed)."""
    table = db.metadata.tables["notifications"]
    rows = db.session.execute(select(table.c.id, table.c.state).where(table.c.customer_id == customer_id)).all()
    for row_id, state in rows:
        values = {"recipient": f"erased-{customer_id}-{row_id}@invalid", "cc": [], "subject": ERASED,
                  "body_text": ERASED, "body_html": None}
        if state in (NotificationState.PENDING, NotificationState.SENDING):
            values |= {"state": NotificationState.FAILED, "last_error": "erased (KVKK)", "claim_token": None}
        db.session.execute(update(table).where(table.c.id == row_id).values(**values))
    return len(rows)


def _erase_activation_requests(customer_id: int) -> int:
    """The contact details, the customer's note and the agent's reason for a rejection (written to the
    customer, it may greet them by name)."""
    return db.session.execute(update(ActivationRequest).where(ActivationRequest.customer_id == customer_id).values(
        email=placeholder_email(customer_id), phone="", note=None, reason=None)).rowcount


def _erase_orders(customer_id: int) -> int:
    """The orders stay for accounting; the contact details, the customer's words and the IP address go."""
    return db.session.execute(update(Order).where(Order.customer_id == customer_id).values(
        contact_email=None, contact_phone=None, customer_note=None, ip=None)).rowcount


# What erasure does to each table that refers to a customer (see the module's docstring).
ERASURE: dict[str, Callable[[int], int]] = {
    "customers": _erase_customer,
    "customer_departments": _keep,
    "customer_notes": _delete_rows(CustomerNote),  # agents' notes about the customer
    "orders": _erase_orders,
    "invoices": _keep,  # the buyer snapshot is a tax document: kept for `retention_years`
    "ledger_entries": _keep,
    "grants": _keep,
    "subscription_periods": _keep,
    "usages": _keep,
    "account_balances": _keep,
    "balance_entries": _keep,
    "conversations": _erase_conversations,
    "notifications": _erase_notifications,
    "activation_requests": _erase_activation_requests,
    "cancellation_requests": _blank(CancellationRequest, reason=ERASED, decision_note=None),
    "erasure_requests": _blank(ErasureRequest, reason=None),
    "marketing_consents": _blank(MarketingConsent, ip=None),  # the choices and their times stay as proof
}


def erase(customer: Customer) -> dict[str, int]:
    """Anonymise everything personal of the (locked) customer, table by table as `ERASURE` says, then the audit
    entries about them, their sign-in counters and the API answers kept for retries that show their details.
    Returns the rows changed per table (no personal data)."""
    personal, email = _personal_values(customer), customer.email.lower()
    about = _about(customer.id)
    counts = {name: action(customer.id) for name, action in ERASURE.items()}
    entries = db.session.scalars(select(AuditEntry).where(about)).all()
    for entry in entries:
        if entry.actor_type == ActorType.CUSTOMER and entry.actor_id == customer.id:
            entry.actor_label = placeholder_email(customer.id)
        if entry.details:
            entry.details = _scrub(entry.details, personal)
    counts["audit_log"] = len(entries)
    counts["rate_limit_counters"] = db.session.execute(delete(RateLimitCounter).where(
        RateLimitCounter.key.like(f"%/{email}"))).rowcount
    counts["api_idempotency_keys"] = idempotency.forget_answers_mentioning(email)
    return {name: count for name, count in counts.items() if count}


# --- the retention period of invoices -----------------------------------------------------------------------

def retention_cutoff(moment: datetime) -> datetime:
    years = settings.get("retention_years")
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February, in a year that has none
        return moment.replace(year=moment.year - years, day=28) + timedelta(days=1)


def anonymise_expired_invoices(actor: audit.Actor) -> int:
    """Blank the buyer snapshot of erased customers' invoices issued (or made) before the retention period, and
    the contracts their orders accepted by then: the law no longer requires them. Returns how many invoices;
    the audit log records the counts, not the buyers."""
    cutoff = retention_cutoff(now())
    invoices = db.session.scalars(
        select(Invoice).join(Customer, Customer.id == Invoice.customer_id)
        .where(Customer.erased_at.is_not(None))
        .where(db.func.coalesce(Invoice.issued_at, Invoice.created_at) < cutoff)
        .with_for_update(of=Invoice)).all()
    changed = 0
    for invoice in invoices:
        if invoice.buyer.get("erased"):
            continue
        invoice.buyer = {"account_type": invoice.buyer.get("account_type"), "name": ERASED,
                         "email": placeholder_email(invoice.customer_id), "erased": True}
        changed += 1
    erased_orders = select(Order.id).join(Customer, Customer.id == Order.customer_id).where(
        Customer.erased_at.is_not(None))
    contracts = db.session.execute(
        update(OrderContract).where(OrderContract.order_id.in_(erased_orders), OrderContract.accepted_at < cutoff,
                                    OrderContract.pre_information != ERASED)
        .values(pre_information=ERASED, distance_sales=ERASED, ip=None)).rowcount
    if changed or contracts:
        audit.record(actor, "invoice.buyers_anonymised", count=changed, contracts=contracts,
                     before=cutoff.isoformat())
    return changed
