"""Signed outbound webhooks, in the manner of Stripe and Lago: an external help desk hears about changes.

`emit` turns an event into one outbox row (channel `webhook`) per active endpoint that listens to it, in
the caller's transaction: a rolled-back change sends nothing. The outbox claims and retries these rows as
it does mail (services/outbox.py), and calls `deliver`, which POSTs the JSON body

    {"id": "evt_…", "type": "order.paid", "created_at": "2026-03-01T09:00:00Z", "data": {…}}

with the header `LimonBilling-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the
endpoint's secret and made at each attempt. README "Webhooks" documents `data` and a receiver.

Server-side request forgery: an endpoint must be http(s) on a public address (`url_refusal`), checked when
it is saved and again before each delivery; redirects are not followed.
"""
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, select

from ..clock import now
from ..extensions import db
from ..formatting import utc_timestamp
from ..models import Customer, LedgerEntry, Notification, Order, Refund, Webhook, WebhookEvent
from . import ServiceError, ValidationFailed, audit, holdings, ledger, settings

SIGNATURE_HEADER = "LimonBilling-Signature"
TEST_EVENT = "webhook.test"
TIMEOUT = (5, 10)  # seconds to connect, to read the answer
EXCERPT = 200  # bytes of the receiver's answer read and kept on the delivery
MAX_URL_LENGTH = 2000


class Undelivered(Exception):
    """The receiver was not reached or did not answer 2xx (the outbox's DeliveryError of a webhook: its text is
    safe to show agents); `recorded` is the answer for the outbox row."""

    def __init__(self, reason: str, code: int | None = None, excerpt: str | None = None):
        super().__init__(reason)
        self.recorded = {"response_code": code, "response_excerpt": excerpt}


# --- what each event says ---------------------------------------------------------------------------

def _customer(customer_id: int) -> dict:
    customer = db.session.get(Customer, customer_id)
    return {"id": customer.id, "email": customer.email}


def _order(order: Order, **extra) -> dict:
    return {
        "order": {
            "number": order.number, "status": order.status, "payment_status": order.payment_status,
            "payment_method": order.payment_method, "package_name": order.package_name,
            "amount_minor": order.amount_minor, "refunded_minor": order.refunded_minor, "currency": order.currency,
        },
        "customer": _customer(order.customer_id), **extra,
    }


def _refunded(order: Order, refund: Refund) -> dict:
    return _order(order, refund={"id": refund.id, "amount_minor": refund.amount_minor, "currency": refund.currency,
                                 "to": refund.destination, "automatic": refund.automatic})


def _entitlement(customer: Customer, change: str) -> dict:
    expiry = holdings.subscription_expiry(customer) if customer.package_type == "subscription" else None
    return {"customer": _customer(customer.id), "change": change, "entitlement": {
        "package_type": customer.package_type, "credits": customer.credits,
        "subscription_expires_at": utc_timestamp(expiry)}}


def _credits_low(customer: Customer, entry: LedgerEntry) -> dict:
    return {"customer": _customer(customer.id), "credits": entry.balance_after,
            "threshold": ledger.low_credit_threshold(customer.low_credit_threshold)}


def _usage(customer_id: int, department_id: int, kind: str, reference: str, charge) -> dict:
    return {"customer": _customer(customer_id), "credits": charge.credits, "usage": {
        "id": charge.usage_id, "kind": kind, "reference": reference, "department_id": department_id,
        "cost": charge.charged, "covered_by": charge.covered_by}}


DATA = {
    "order.paid": _order,
    "order.status_changed": lambda order, previous: _order(order, previous_status=previous),
    "order.refunded": _refunded,
    "entitlement.changed": _entitlement,
    "credits.low": _credits_low,
    "usage.charged": _usage,
}


# --- queueing ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Endpoint:
    """What queueing needs of an active endpoint, kept by each process between requests."""

    id: int
    url: str
    events: frozenset[str]


VERSION = "webhooks"  # its settings.version changes with every change of an endpoint (create, update, remove)


def _active_endpoints() -> list[_Endpoint]:
    """The active endpoints, read once per process (per app) for as long as their version stays the same.

    Every charge and bank callback emits events, and almost always nobody listens: this costs no query then
    (the version is read with the settings). The version is read before the endpoints, so a copy is never
    older than the version it is kept under."""
    seen = settings.version(VERSION)
    cached = current_app.extensions.get("webhook_endpoints")  # (version, endpoints)
    if cached is None or cached[0] != seen:
        with db.session.no_autoflush:  # the caller's half-made changes stay unwritten until it flushes
            hooks = db.session.scalars(select(Webhook).where(Webhook.active).order_by(Webhook.id))
            cached = (seen, [_Endpoint(hook.id, hook.url, frozenset(hook.events)) for hook in hooks])
        current_app.extensions["webhook_endpoints"] = cached
    return cached[1]


def emit(event: str, **subjects) -> int:
    """Queue `event` for each active endpoint listening to it (in the caller's transaction); how many.

    The body is built only when someone listens, from `subjects` as `DATA[event]` takes them."""
    listening = [endpoint for endpoint in _active_endpoints() if event in endpoint.events]
    if listening:
        _queue(event, DATA[event](**subjects), listening)
    return len(listening)


def _queue(event: str, data: dict, endpoints: list[Webhook] | list[_Endpoint]) -> None:
    """One event id and body for all endpoints (a receiver may de-duplicate by id), one outbox row each."""
    event_id = "evt_" + secrets.token_hex(12)
    body = json.dumps({"id": event_id, "type": event, "created_at": utc_timestamp(now()), "data": data},
                      separators=(",", ":"))
    for endpoint in endpoints:
        db.session.add(Notification(
            event=event, event_key=f"{event_id}:{endpoint.id}", channel="webhook", recipient=endpoint.url[:254],
            cc=[], language="", subject=event, body_text=body, body_html=None,
            customer_id=data.get("customer", {}).get("id"), order_number=data.get("order", {}).get("number"),
            webhook_id=endpoint.id, state="pending", attempts=0, next_attempt_at=now(), created_at=now(),
        ))
    db.session.info["outbox_queued"] = True


# --- delivering -------------------------------------------------------------------------------------

def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value: `t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _answer_excerpt(answer: requests.Response) -> str:
    """The first characters of the answer, read no further (a receiver could answer without end)."""
    return next(answer.iter_content(EXCERPT), b"").decode(errors="replace").replace("\x00", "")


def deliver(message) -> dict:
    """POST one claimed outbox row (services/outbox.py `Claimed`) to its endpoint, signed now.

    Returns the answer's columns for the row; raises Undelivered unless the receiver answered 2xx (a 3xx
    too: redirects are not followed). The address is checked again first: DNS may have changed since."""
    endpoint = db.session.execute(select(Webhook.url, Webhook.secret).join(
        Notification, Notification.webhook_id == Webhook.id).where(Notification.id == message.id)).first()
    db.session.commit()  # hold no transaction (on SQLite: the writer's lock) while the receiver answers
    if endpoint is None:
        raise Undelivered("The endpoint is deleted.")
    refused = url_refusal(endpoint.url)
    if refused:
        raise Undelivered(refused)
    body = message.body_text.encode()
    timestamp = int(now().timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": "LimonBilling-Webhooks/1",
               SIGNATURE_HEADER: signature(endpoint.secret, timestamp, body)}
    try:
        with requests.post(endpoint.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False,
                           stream=True) as answer:
            code, excerpt = answer.status_code, _answer_excerpt(answer)
    except requests.RequestException as error:
        raise Undelivered(f"{type(error).__name__}: the receiver is not reachable") from error
    if not 200 <= code < 300:
        raise Undelivered(f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
                          + (f": {excerpt}" if excerpt else ""), code, excerpt)
    return {"response_code": code, "response_excerpt": excerpt}


# --- where an endpoint may be -----------------------------------------------------------------------

def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 scope (fe80::1%eth0) is not part of it
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if current_app.config["WEBHOOKS_ALLOW_PRIVATE"] or (ip.is_loopback and (current_app.debug or current_app.testing)):
        return False
    return ip.is_multicast or not ip.is_global  # not global: loopback, private, link-local, reserved, unspecified…


def url_refusal(url: str) -> str | None:
    """Why the app may not call `url`, or None (server-side request forgery, docs/security.md).

    Only http(s), and only to a host all of whose addresses are public: loopback, private, link-local,
    multicast and reserved ones are refused unless WEBHOOKS_ALLOW_PRIVATE is set (development and testing
    allow loopback)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    if parts.scheme not in ("https", "http") or not parts.hostname or port is None:
        return _("Enter an address starting with https:// (or http://).")
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return _("%(host)s cannot be found; check the address.", host=parts.hostname)
    internal = sorted({info[4][0] for info in found if _internal(info[4][0])})
    if internal:
        return _("%(host)s leads to %(address)s, an address of a private or local network; webhooks go to "
                 "public addresses only.", host=parts.hostname, address=internal[0])
    return None


# --- Settings → Webhooks ----------------------------------------------------------------------------

def _checked_events(events: list[str]) -> list[str]:
    chosen = [event for event in WebhookEvent if event in events]
    if not chosen:
        raise ValidationFailed({"events": [_("Choose at least one event.")]})
    return chosen


def create(url: str, events: list[str], actor: audit.Actor) -> tuple[Webhook, str]:
    """A new endpoint with a new secret, returned this once for the agent to copy."""
    url = (url or "").strip()
    refused = (_("Enter at most %(max)d characters.", max=MAX_URL_LENGTH) if len(url) > MAX_URL_LENGTH
               else url_refusal(url))
    if refused:
        raise ValidationFailed({"url": [refused]})
    secret = "whsec_" + secrets.token_hex(24)
    webhook = Webhook(url=url, secret=secret, events=_checked_events(events), active=True, created_at=now())
    db.session.add(webhook)
    db.session.flush()
    settings.new_version(VERSION)
    audit.record(actor, "webhook.create", webhook, url=url, events=webhook.events)
    return webhook, secret


def update(webhook: Webhook, events: list[str], active: bool, actor: audit.Actor) -> None:
    """The events and on/off; switched off, it hears of no new event (what is queued still goes)."""
    webhook.events, webhook.active = _checked_events(events), bool(active)
    db.session.flush()  # as _active_endpoints reads it, should this transaction emit an event still
    settings.new_version(VERSION)
    audit.record(actor, "webhook.update", webhook, events=webhook.events, active=webhook.active)


def remove(webhook: Webhook, actor: audit.Actor) -> None:
    """Delete the endpoint with its deliveries, also those still waiting."""
    audit.record(actor, "webhook.delete", webhook, url=webhook.url)
    db.session.execute(delete(Notification).where(Notification.webhook_id == webhook.id))
    db.session.delete(webhook)
    db.session.flush()  # gone from what _active_endpoints reads, should this transaction emit an event still
    settings.new_version(VERSION)


def send_test(webhook: Webhook, actor: audit.Actor) -> None:
    """"Send test event": a `webhook.test` event to this endpoint alone, through the outbox like any other."""
    refused = url_refusal(webhook.url)
    if refused:
        raise ServiceError("url_refused", refused)
    _queue(TEST_EVENT, {"webhook_id": webhook.id}, [webhook])
    audit.record(actor, "webhook.test", webhook)


def deliveries(webhook: Webhook, limit: int = 50) -> list[Notification]:
    """The endpoint's latest deliveries, newest first (the full history is on the outbox page)."""
    return list(db.session.scalars(select(Notification).where(Notification.webhook_id == webhook.id)
                                   .order_by(Notification.id.desc()).limit(limit)))
