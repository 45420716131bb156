"""The outbox sender: it claims due messages, delivers them, and retries failures with growing delays.

Several senders may run at once (the `billing outbox run` worker, each web
process right after a commit, a cron `send-due`). A sender first claims rows
in a short transaction of its own — `SELECT … FOR UPDATE SKIP LOCKED` on
PostgreSQL, and on SQLite a conditional UPDATE inside the database's single
write lock — marking them `sending` with its token, so no two senders hold
the same row. Each message is sent, and its result written back, only while
the claim is still the sender's (renewed just before it is sent). A claim
runs out after OUTBOX_CLAIM_SECONDS, so the rows of a killed sender are
delivered by another one.
"""
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.orm import Session

from ..clock import now
from ..extensions import db
from ..models import Notification, NotificationChannel, NotificationState
from ..transports import DeliveryError, SmtpConnection, build_email, send_sms
from . import ServiceError, audit, invoice_pdf, messaging, settings, webhooks

BATCH_SIZE = 20
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes after the 1st, 2nd, 3rd, 4th … failed attempt, at most 6 hours.

    The exponent is capped first (2 ** 9 minutes already passes 6 hours), so no attempt count overflows."""
    doublings = min(max(attempts - 1, 0), (LONGEST_RETRY // FIRST_RETRY).bit_length())
    return min(FIRST_RETRY * 2 ** doublings, LONGEST_RETRY)


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed


def ready_channels(values: dict) -> list[str]:
    """E-mail waits in the outbox until SMTP is configured; SMS rows exist only while SMS is on; webhooks
    need no settings."""
    ready = {"email": messaging.smtp_configured(values), "sms": messaging.sms_configured(values), "webhook": True}
    return [channel for channel, on in ready.items() if on]


def _claimable(moment: datetime, channels: list[str]):
    return and_(Notification.channel.in_(channels), or_(
        and_(Notification.state == NotificationState.PENDING, Notification.next_attempt_at <= moment),
        and_(Notification.state == "sending", Notification.claimed_until < moment),
    ))


@dataclass(frozen=True)
class Claimed:
    """A claimed row, copied out so that no transaction stays open while the mail server is talked to."""

    id: int
    claim_token: str
    channel: str
    recipient: str
    cc: tuple[str, ...]
    subject: str
    body_text: str
    body_html: str | None
    attempts: int
    event: str
    order_number: str | None
    language: str


def claim(limit: int, channels: list[str]) -> list[Claimed]:
    """Take up to `limit` due rows for this sender; the claim is committed before anything is sent."""
    if not channels:
        return []
    moment, token = now(), secrets.token_hex(16)
    due_ids = list(db.session.scalars(
        select(Notification.id).where(_claimable(moment, channels))
        .order_by(Notification.next_attempt_at, Notification.id).limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
    ))
    claimed = []
    if due_ids:
        db.session.execute(
            update(Notification).where(Notification.id.in_(due_ids), _claimable(moment, channels))
            .values(state="sending", claim_token=token,
                    claimed_until=moment + timedelta(seconds=current_app.config["OUTBOX_CLAIM_SECONDS"])),
            execution_options={"synchronize_session": False},
        )
        claimed = [
            Claimed(row.id, token, row.channel, row.recipient, tuple(row.cc or ()), row.subject, row.body_text,
                    row.body_html, row.attempts, row.event, row.order_number, row.language)
            for row in db.session.scalars(
                select(Notification).where(Notification.claim_token == token).order_by(Notification.id)
                .execution_options(populate_existing=True))
        ]
    db.session.commit()
    return claimed


def _finish(message: Claimed, **values) -> None:
    """Record the outcome in a short transaction, only while the claim is still this sender's."""
    db.session.execute(
        update(Notification).where(Notification.id == message.id, Notification.claim_token == message.claim_token)
        .values(claim_token=None, claimed_until=None, attempts=message.attempts + 1, **values),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()


def _renew(message: Claimed) -> bool:
    """Whether the claim is still this sender's, renewed for OUTBOX_CLAIM_SECONDS from now. A batch is claimed
    at once and sent one by one: the later rows' claims may run out while a slow server takes the first ones,
    and another sender may have taken them over and sent them meanwhile."""
    renewed = db.session.execute(
        update(Notification).where(Notification.id == message.id, Notification.claim_token == message.claim_token)
        .values(claimed_until=now() + timedelta(seconds=current_app.config["OUTBOX_CLAIM_SECONDS"])),
        execution_options={"synchronize_session": False},
    ).rowcount
    db.session.commit()
    return renewed == 1


def deliver(message: Claimed, values: dict, connection: SmtpConnection, report: SendReport) -> None:
    """Send one claimed message and record the outcome: sent, to be retried later, or failed for good; nothing
    when another sender took the message over (its claim ran out while this sender was slow).

    A message that cannot even be built (an address the mail classes refuse) fails like one the server
    refused: alone, with its error on the row for agents, never stopping the messages after it."""
    if not _renew(message):
        return
    recorded = {}
    try:
        if message.channel == "email":
            attachments = invoice_pdf.mail_attachments(message.event, message.order_number, message.language)
            db.session.commit()  # end the read of the invoice before the mail server is talked to
            connection.send(build_email(
                values, to=message.recipient, cc=list(message.cc), subject=message.subject,
                text=message.body_text, html=message.body_html,
                message_id=f"limonbilling-notification-{message.id}", attachments=attachments,
            ))
        elif message.channel == "webhook":
            recorded = webhooks.deliver(message)
        else:
            send_sms(values, message.recipient, message.body_text)
    except Exception as error:  # noqa: BLE001 - one bad message must not stop the others
        recorded = getattr(error, "recorded", {})  # a webhook's answer (webhooks.Undelivered)
        if isinstance(error, (DeliveryError, webhooks.Undelivered)):
            reason = str(error)
        else:
            reason = f"{type(error).__name__}: {error}"
            current_app.logger.exception("outbox: notification %s cannot be sent", message.id)
        attempts = message.attempts + 1
        if attempts >= values["notification_max_attempts"]:
            report.failed += 1
            _finish(message, state="failed", last_error=reason[:2000], **recorded)
            current_app.logger.warning("outbox: notification %s failed for good: %s", message.id, reason)
        else:
            report.retrying += 1
            _finish(message, state=NotificationState.PENDING, last_error=reason[:2000],
                    next_attempt_at=now() + retry_delay(attempts), **recorded)
        return
    report.sent += 1
    _finish(message, state="sent", sent_at=now(), last_error=None, **recorded)


def send_due() -> SendReport:
    """Deliver everything due now, batch by batch (the worker's loop body, cron's `send-due`)."""
    report = SendReport()
    values = settings.get_all()
    db.session.commit()  # end the read transaction: claims run in transactions of their own
    channels = ready_channels(values)
    with SmtpConnection(values) as connection:
        while batch := claim(BATCH_SIZE, channels):
            for message in batch:
                deliver(message, values, connection, report)
    return report


def retry(notification: Notification, actor: audit.Actor) -> None:
    """An agent sends a failed message again: it gets a fresh set of attempts, starting now."""
    if notification.state != "failed":
        raise ServiceError("not_failed", _("Only a failed message can be sent again."))
    notification.state = NotificationState.PENDING
    notification.attempts = 0
    notification.next_attempt_at = now()
    audit.record(actor, "notification.retry", notification, recipient=notification.recipient,
                 event=notification.event)
    db.session.info["outbox_queued"] = True


def waiting_for_smtp() -> int:
    """How many e-mails wait because no SMTP server is configured (shown on the Notifications page)."""
    if messaging.smtp_configured():
        return 0
    return db.session.scalar(select(db.func.count(Notification.id)).where(
        Notification.channel == NotificationChannel.EMAIL, Notification.state == NotificationState.PENDING)) or 0


# --- right after commit -----------------------------------------------------------------------------

class AfterCommitSender:
    """One background thread per process that delivers as soon as a commit queued messages.

    The request never waits for the mail server and never fails because of it;
    anything this thread cannot deliver stays in the outbox for the worker.
    """

    def __init__(self, app: Flask):
        self.app = app
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-after-commit", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self.app.app_context():
                try:
                    send_due()
                except Exception:  # the worker retries whatever is left; this thread must live on
                    self.app.logger.exception("outbox: delivery after commit failed; the worker will retry")
                finally:
                    db.session.remove()


def init_app(app: Flask) -> None:
    if app.config["OUTBOX_SEND_AFTER_COMMIT"]:
        app.extensions["outbox_sender"] = AfterCommitSender(app)


@event.listens_for(Session, "after_commit")
def _wake_sender(session: Session) -> None:
    if session.info.pop("outbox_queued", False) and has_app_context():
        sender = current_app.extensions.get("outbox_sender")
        if sender is not None:
            sender.wake()


@event.listens_for(Session, "after_rollback")
def _forget_queued(session: Session) -> None:
    session.info.pop("outbox_queued", None)
