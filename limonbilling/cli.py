"""`flask --app wsgi billing …` commands."""
import signal
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .extensions import db
from .models import Agent
from .payments import gateways
from .services import (
    ValidationFailed,
    accounts,
    api_tokens,
    audit,
    card_payments,
    entitlements,
    idempotency,
    notifications,
    outbox,
    privacy,
    transfer_deadlines,
)
from .services.demo import DEMO_PASSWORD, SIGN_INS, load_demo_data, use_debug_smtp, use_simulator

billing_cli = AppGroup("billing", help="LimonBilling administration.")


def _fail_with(error: ValidationFailed) -> None:
    db.session.rollback()
    for field, messages in error.errors.items():
        for message in messages:
            click.echo(f"{field}: {message}", err=True)
    sys.exit(1)


@billing_cli.command("create-owner")
@click.argument("email")
@click.option("--name", help="Display name (defaults to the part before @).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_owner(email: str, name: str | None, password_stdin: bool) -> None:
    """Create an owner agent, who holds every permission."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        agent = accounts.create_owner(email, password, name=name)
    except ValidationFailed as error:
        _fail_with(error)
    db.session.commit()
    click.echo(f"Owner {agent.email} created.")


@billing_cli.command("demo")
@click.option("--if-empty", is_flag=True, help="Only load when the database has no agent yet (first start).")
def demo(if_empty: bool) -> None:
    """Load the demo data (idempotent) and print the demo sign-ins."""
    if if_empty and db.session.scalar(select(Agent.id).limit(1)) is not None:
        created = []
    else:
        created = load_demo_data()
        db.session.commit()
    for line in created:
        click.echo(f"created {line}")
    click.echo(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
    for role, path, email in SIGN_INS:
        click.echo(f"  {role:24} http://127.0.0.1:5000{path:14} {email}")


def one_by_one(ids, handle, label: str) -> tuple[list, list[str]]:
    """Run `handle` on each id in a transaction of its own. One that fails is rolled back and logged, and the
    rest still run: one bad row or one unreadable bank answer must not stop every later settlement, expiry or
    reconciliation. Returns the results and a line for each failure (the next run tries it again)."""
    results, failed = [], []
    for item_id in ids:
        try:
            results.append(handle(item_id))
            db.session.commit()
        except Exception as error:  # noqa: BLE001 - logged with its traceback; this item waits for the next run
            db.session.rollback()
            current_app.logger.exception("%s %s failed; the next run tries again", label, item_id)
            failed.append(f"{label} {item_id}: failed ({type(error).__name__}); the next run tries again")
    return results, failed


@billing_cli.command("expire")
def expire() -> None:
    """Switch off the package departments of ended subscriptions and cancel card checkouts left unpaid
    past their time, after asking the bank about their attempts (run from cron, e.g. every 10 minutes).
    A customer or an order that fails is reported and left for the next run; the exit status is then 1."""
    changed, failed = one_by_one(entitlements.subscribers_to_expire(), entitlements.expire_subscriber, "customer")
    gateway, actor = gateways.gateway(), audit.Actor.system("expiry")
    abandoned, failed_too = one_by_one(card_payments.stale_checkouts(), lambda order_id:
                                       card_payments.expire_checkout(order_id, gateway, actor), "order")
    actor = audit.Actor.system("transfer-deadline")
    overdue, failed_last = one_by_one(transfer_deadlines.overdue_orders(),
                                      lambda order_id: transfer_deadlines.cancel_overdue(order_id, actor), "order")
    forgotten = idempotency.prune()
    db.session.commit()
    failed += failed_too + failed_last
    for line in failed:
        click.echo(line)
    click.echo(f"{sum(changed)} customer(s) updated, {sum(abandoned)} unpaid card checkout(s) cancelled, "
               f"{sum(overdue)} bank-transfer order(s) past their deadline cancelled, {forgotten} API idempotency "
               f"key(s) older than a day forgotten.")
    if failed:
        sys.exit(1)


def reconcile_with_bank(older_than: int) -> list[str]:
    """Ask the bank about every card attempt with no final answer older than `older_than` minutes and every
    card refund in flight, each in its own transaction; one line per item settled, still unknown or failed."""
    gateway, actor = gateways.gateway(), audit.Actor.system("reconcile")
    attempts, failed = one_by_one(card_payments.unanswered_attempts(older_than), lambda payment_id:
                                  card_payments.ask_bank_about_attempt(payment_id, gateway, actor), "payment")
    refunds, failed_too = one_by_one(card_payments.orders_with_refunds_in_flight(), lambda order_id:
                                     card_payments.ask_bank_about_refunds(order_id, gateway, actor), "order")
    return attempts + refunds + failed + failed_too


def _failed(line: str) -> bool:
    return line.endswith("; the next run tries again")


@billing_cli.command("reconcile")
@click.option("--older-than", "older_than", default=15, show_default=True, type=click.IntRange(0, 10080),
              help="Minutes since an attempt was sent to the bank.")
def reconcile(older_than: int) -> None:
    """Settle card attempts whose callback never came and refunds whose outcome is unknown, by asking the bank
    (ORDERSTATUS) and applying its answer as a callback would (cron, or the outbox worker does it)."""
    lines = reconcile_with_bank(older_than)
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} item(s) checked with the bank.")
    if any(_failed(line) for line in lines):
        sys.exit(1)


@billing_cli.command("use-simulator")
@click.argument("base_url", default="http://127.0.0.1:5001")
def use_simulator_command(base_url: str) -> None:
    """Pay by card through the local NestPay simulator (development; only if no gateway is set up)."""
    if use_simulator(base_url.rstrip("/")):
        db.session.commit()
        click.echo(f"Card payments go to the NestPay simulator at {base_url} (test card 4355 0843 5508 4358).")
    else:
        click.echo("A card gateway is already configured; left as it is.")


@billing_cli.command("use-debug-smtp")
@click.argument("address", default="127.0.0.1:8025")
def use_debug_smtp_command(address: str) -> None:
    """Send e-mail to a local debugging SMTP server that prints it (development; only if none is set up)."""
    host, _sep, port = address.rpartition(":")
    if use_debug_smtp(host, int(port)):
        db.session.commit()
        click.echo(f"E-mails go to the debugging SMTP server at {address}; Settings → Notifications lists them.")
    else:
        click.echo("An SMTP server is already configured; left as it is.")


@billing_cli.command("remind")
def remind() -> None:
    """Queue the time-based reminders: subscriptions ending (30, 7, 1 days before) and ended, and bank-transfer
    orders still unpaid (Settings → Orders). Idempotent: run it from cron, e.g. hourly; a second run the same day
    queues nothing new."""
    queued = notifications.queue_reminders() + transfer_deadlines.queue_reminders()
    db.session.commit()
    click.echo(f"{queued} reminder(s) queued.")


@billing_cli.command("anonymise-invoices")
def anonymise_invoices() -> None:
    """Blank the buyer details of erased customers' invoices older than the retention period (setting
    `retention_years`, default 10): the tax law keeps them until then. Run it from cron, e.g. daily."""
    changed = privacy.anonymise_expired_invoices(audit.Actor.system("retention"))
    db.session.commit()
    click.echo(f"{changed} invoice(s) no longer name their buyer.")


outbox_cli = AppGroup("outbox", help="Deliver the queued e-mails and SMS.")
billing_cli.add_command(outbox_cli)


def _report(report: outbox.SendReport) -> str:
    return f"{report.sent} sent, {report.retrying} to retry later, {report.failed} failed for good."


@outbox_cli.command("send-due")
def outbox_send_due() -> None:
    """Deliver what is due now, once (for cron)."""
    click.echo(_report(outbox.send_due()))


RECONCILE_EVERY_SECONDS = 300  # the worker asks the bank about unanswered attempts and refunds this often


def _reconcile_safely() -> list[str]:
    """The worker's reconciliation: a failure is reported and the mail keeps going out."""
    try:
        return reconcile_with_bank(15)
    except Exception as error:  # noqa: BLE001 - the worker must survive anything the bank or a row does
        db.session.rollback()
        return [f"reconciliation failed: {error!r}"]
    finally:
        db.session.remove()


@outbox_cli.command("run")
@click.option("--interval", default=5.0, show_default=True, help="Seconds to wait when nothing is due.")
def outbox_run(interval: float) -> None:
    """The worker: deliver due messages in a loop until stopped (SIGTERM or Ctrl-C finish the current one);
    every few minutes it also reconciles card payments with the bank (`billing reconcile`)."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_args: stopping.append(True))
    click.echo(f"Outbox worker started; checking every {interval:g} s.")
    last_reconcile = 0.0
    try:
        while not stopping:
            if time.monotonic() - last_reconcile >= RECONCILE_EVERY_SECONDS:
                last_reconcile = time.monotonic()
                for line in _reconcile_safely():
                    click.echo(line)
            try:
                report = outbox.send_due()
            except Exception:  # noqa: BLE001 - e.g. the database away: the worker waits and tries again
                current_app.logger.exception("outbox: delivery run failed; trying again in %g s", interval)
                report = outbox.SendReport()
            finally:
                db.session.remove()
            if report.handled:
                click.echo(_report(report))
            else:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    click.echo("Outbox worker stopped.")


@billing_cli.command("create-token")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["read", "write"]),
              help="Repeat for several; both when none is given.")
def create_token(name: str, scopes: tuple[str, ...]) -> None:
    """Create an API token and print it (only the token, on stdout: it is not shown again)."""
    try:
        _token, plain = api_tokens.create_token(name, list(scopes) or ["read", "write"], audit.Actor.system("cli"))
    except ValidationFailed as error:
        _fail_with(error)
    db.session.commit()
    click.echo(plain)
