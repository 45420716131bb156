"""Invoices: VAT, statuses that follow the order, and gap-free numbers even under concurrent issuing."""
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from limonbilling.extensions import db
from limonbilling.models import Invoice, Order
from limonbilling.services import ServiceError, card_payments, invoices, order_actions, placement, settings

from ..factories import make_corporate_customer, make_customer, make_department, make_package
from ..payment_support import AGENT, BANK, as_customer, bank_answer, card_order, refund_to_balance


@pytest.mark.parametrize(("amount", "rate", "inclusive", "expected"), [
    (15000, 20, True, (12500, 2500, 15000)),
    (10000, 20, False, (10000, 2000, 12000)),
    (999, 20, True, (833, 166, 999)),
    (1, 18, False, (1, 0, 1)),
    (5000, 0, True, (5000, 0, 5000)),
])
def test_vat_totals(amount, rate, inclusive, expected):
    assert invoices.vat_totals(amount, rate, inclusive) == expected


def test_exclusive_vat_is_added_to_what_the_customer_pays(gateway):
    settings.update({"vat_inclusive": False, "vat_rate_percent": 20}, AGENT)
    order, _attempt = card_order(make_customer(), make_package("credit", [make_department()], price="100.00"))
    assert (order.amount_minor, order.vat_minor) == (12000, 2000)
    invoice = order.invoice
    assert (invoice.net_minor, invoice.vat_minor, invoice.total_minor) == (10000, 2000, 12000)


def test_invoice_follows_the_order(gateway):
    settings.update({"seller_tax_number": "4540536920", "seller_address": "Moda, İstanbul"}, AGENT)
    customer = make_corporate_customer()
    order, attempt = card_order(customer, make_package("credit", [make_department()], credits=10))
    invoice = order.invoice
    assert (invoice.status, invoice.number) == ("unpaid", None)
    assert invoice.buyer["company_name"] == "Öztürk Yazılım A.Ş." and invoice.buyer["tax_number"] == "4540536920"
    assert invoice.seller["address"] == "Moda, İstanbul"
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert invoice.status == "paid" and invoice.number == "2026-000001"
    order_actions.cancel_order(order, AGENT)
    assert invoice.status == "cancelled"
    order_actions.back_to_pending(order, AGENT)
    assert invoice.status == "paid" and invoice.number == "2026-000001"  # the money is still held
    order_actions.set_fraud(order, AGENT)
    assert invoice.status == "cancelled"
    refund_to_balance(order)
    assert invoice.status == "refunded"
    db.session.commit()
    with pytest.raises(ServiceError):  # an order with an issued invoice moved money: it is never deleted
        order_actions.delete_order(order, AGENT)
    db.session.rollback()
    kept = db.session.scalar(db.select(Invoice))
    assert (kept.number, kept.status, kept.order_id) == ("2026-000001", "refunded", order.id)


def test_an_unissued_invoice_goes_with_its_deleted_order(gateway):
    customer = make_customer()
    order = placement.place_customer_order(customer, make_package("credit", [make_department()]), payment_method="card",
                                actor=as_customer(customer), contracts_accepted=True)
    order_actions.cancel_unpaid_order(order, AGENT)
    order_actions.delete_order(order, AGENT)
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Invoice.id))) == 0


def test_numbers_restart_each_year_and_have_no_gaps(gateway, clock):
    department = make_department()
    issued = []
    for _ in range(3):
        order, attempt = card_order(make_customer(), make_package("credit", [department]))
        card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
        db.session.commit()
        issued.append(order.invoice.number)
    clock.set(clock.now().replace(year=2027, month=1, day=1))
    order, attempt = card_order(make_customer(), make_package("credit", [department]))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert issued == ["2026-000001", "2026-000002", "2026-000003"] and order.invoice.number == "2027-000001"


def test_the_invoice_year_turns_at_istanbul_midnight_to_the_microsecond(gateway, clock):
    """31 December 23:59:59.999999 in Istanbul (20:59:59.999999 UTC) is still the old year; a microsecond
    later is the new one, while UTC is still on 31 December."""
    department = make_department()
    numbers = []
    for moment in (datetime(2026, 12, 31, 20, 59, 59, 999999, tzinfo=UTC), datetime(2026, 12, 31, 21, tzinfo=UTC)):
        clock.set(moment)
        order, attempt = card_order(make_customer(), make_package("credit", [department]))
        card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
        db.session.commit()
        numbers.append((order.invoice.number, order.invoice.year))
    assert numbers == [("2026-000001", 2026), ("2027-000001", 2027)]


def test_concurrent_issuing_is_gap_free(app, gateway):
    department = make_department()
    order_ids = []
    for _ in range(16):
        order, _attempt = card_order(make_customer(), make_package("credit", [department]))
        order_ids.append(order.id)
    db.session.close()
    barrier = threading.Barrier(len(order_ids))

    def pay(order_id, fail):
        with app.app_context():
            barrier.wait()
            try:
                order = db.session.get(Order, order_id)
                invoices.issue(order.invoice)
                if fail:
                    invoices.number_now(order.invoice)
                    raise RuntimeError("the paying transaction fails after taking a number")
                db.session.commit()
            except RuntimeError:
                db.session.rollback()
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(order_ids)) as pool:
        list(pool.map(pay, order_ids, [n % 4 == 0 for n in range(len(order_ids))]))
    numbers = sorted(db.session.scalars(db.select(Invoice.sequence).where(Invoice.sequence.is_not(None))))
    assert numbers == list(range(1, 13))


def test_an_open_payment_does_not_hold_up_the_next_invoice_number(app, gateway, database_url):
    """Every payment writes the year's counter row; its number is taken as it commits, so a payment that is still
    activating its order (or rendering its mails) does not make the next one wait."""
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite lets one transaction write at a time anyway")
    department = make_department()
    answers = []
    for _ in range(2):
        order, attempt = card_order(make_customer(), make_package("credit", [department]))
        answers.append((order.id, bank_answer(attempt)))
    db.session.close()
    first_open, second_committed = threading.Event(), threading.Event()

    def pay(answer, *, first: bool):
        with app.app_context():
            try:
                if not first:
                    assert first_open.wait(20)
                    db.session.execute(text("SET LOCAL lock_timeout = '3s'"))
                card_payments.apply_card_callback(gateway, answer, BANK)
                if first:
                    first_open.set()
                    assert second_committed.wait(20), "the second payment waited for the first one's commit"
                db.session.commit()
                if not first:
                    second_committed.set()
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=2) as pool:
        running = [pool.submit(pay, answers[0][1], first=True), pool.submit(pay, answers[1][1], first=False)]
        for future in running:
            future.result(timeout=60)
    numbers = {order_id: db.session.get(Order, order_id).invoice.number for order_id, _answer in answers}
    assert numbers == {answers[1][0]: "2026-000001", answers[0][0]: "2026-000002"}  # in the order of the commits


def test_invoice_pages(app, gateway):
    from ..factories import make_agent, sign_in

    customer = make_customer(first_name="Çağrı")
    order, attempt = card_order(customer, make_package("credit", [make_department()], name="Gümüş Paket"))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    owner = app.test_client()
    sign_in(owner, customer)
    page = owner.get(f"/orders/{order.number}/invoice").data.decode()
    assert "2026-000001" in page and "Gümüş Paket" in page and "Çağrı" in page
    stranger = app.test_client()
    sign_in(stranger, make_customer())
    assert stranger.get(f"/orders/{order.number}/invoice").status_code == 404
    agent = app.test_client()
    sign_in(agent, make_agent("billing"))
    assert "2026-000001" in agent.get(f"/admin/billing/orders/{order.number}/invoice").data.decode()
