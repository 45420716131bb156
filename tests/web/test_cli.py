"""The `flask billing …` commands a newcomer and cron use: owner, demo data, expiry."""
from limonbilling.extensions import db
from limonbilling.models import Agent, Customer, Order, Package, PromoCode
from limonbilling.services import accounts, placement

from ..factories import make_customer, make_package
from ..payment_support import as_customer, card_order


def test_create_owner_reads_the_password_and_refuses_bad_input(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["billing", "create-owner", "boss@example.com", "--password-stdin"],
                           input="long-pass-1\n")
    assert result.exit_code == 0 and "Owner boss@example.com created." in result.output
    owner = db.session.scalar(db.select(Agent))
    assert owner.is_owner and accounts.authenticate_agent("boss@example.com", "long-pass-1") == owner
    refused = runner.invoke(args=["billing", "create-owner", "not-an-email", "--password-stdin"], input="short\n")
    assert refused.exit_code != 0 and "email" in refused.output
    assert db.session.scalar(db.select(db.func.count(Agent.id))) == 1


def test_demo_loads_once_and_prints_the_sign_ins(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["billing", "demo", "--if-empty"])
    assert first.exit_code == 0 and "created customer ayse@example.com" in first.output
    assert "owner@example.com" in first.output and "demo-pass-1" in first.output
    counts = [db.session.scalar(db.select(db.func.count(m.id))) for m in (Agent, Customer, Package, PromoCode)]
    assert all(counts)
    again = runner.invoke(args=["billing", "demo", "--if-empty"])
    assert again.exit_code == 0 and "created" not in again.output
    repeat = runner.invoke(args=["billing", "demo"])  # idempotent even without --if-empty
    assert "created" not in repeat.output
    assert [db.session.scalar(db.select(db.func.count(m.id))) for m in (Agent, Customer, Package, PromoCode)] == counts
    assert accounts.authenticate_customer("ayse@example.com", "demo-pass-1") is not None


def test_expire_cancels_abandoned_card_checkouts_but_asks_the_bank_first(app, gateway, clock):
    package = make_package("credit")
    buyer = make_customer()
    never_sent = placement.place_customer_order(buyer, package, payment_method="card", actor=as_customer(buyer),
                                                contracts_accepted=True)
    db.session.commit()
    sent, _attempt = card_order(make_customer(), package)  # the bank (out of reach here) cannot tell about it
    runner = app.test_cli_runner()
    assert "0 unpaid card checkout(s) cancelled" in runner.invoke(args=["billing", "expire"]).output
    clock.advance(minutes=31)
    assert "1 unpaid card checkout(s) cancelled" in runner.invoke(args=["billing", "expire"]).output
    db.session.expire_all()
    assert db.session.get(Order, never_sent.id).status == "cancelled"
    assert db.session.get(Order, sent.id).status == "pending"  # the bank may have taken its money


def test_anonymise_invoices_blanks_erased_buyers_past_the_retention_period(app, clock):
    from limonbilling.services import privacy

    from ..factories import PASSWORD
    from ..payment_support import AGENT, paid_by_card

    customer = make_customer(first_name="Retained", email="retained@example.com")
    order = paid_by_card(customer, make_package("credit"))
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    db.session.commit()
    privacy.approve(request.id, AGENT)
    db.session.commit()
    runner = app.test_cli_runner()
    assert "0 invoice(s)" in runner.invoke(args=["billing", "anonymise-invoices"]).output
    assert db.session.get(Order, order.id).invoice.buyer["email"] == "retained@example.com"
    clock.advance(days=365 * 10 + 10)  # ten years and a week (leap days included)
    result = runner.invoke(args=["billing", "anonymise-invoices"])
    assert result.exit_code == 0 and "1 invoice(s) no longer name their buyer." in result.output
    db.session.expire_all()
    assert db.session.get(Order, order.id).invoice.buyer["email"] == f"erased-{customer.id}@invalid"


def test_one_checkout_that_fails_to_expire_does_not_stop_the_others(app, gateway, clock, monkeypatch):
    """An error on one order (a row, an unreadable bank answer) is logged and left for the next run; the others
    are still cancelled, and the exit status says something failed."""
    from limonbilling.services import card_payments

    package = make_package("credit")
    first, second = (placement.place_customer_order(buyer, package, payment_method="card",
                                                    actor=as_customer(buyer), contracts_accepted=True)
                     for buyer in (make_customer(), make_customer()))
    db.session.commit()
    clock.advance(minutes=31)
    real = card_payments.expire_checkout

    def failing_for_the_first(order_id, *args):
        if order_id == first.id:
            raise RuntimeError("a row we cannot read")
        return real(order_id, *args)

    monkeypatch.setattr(card_payments, "expire_checkout", failing_for_the_first)
    result = app.test_cli_runner().invoke(args=["billing", "expire"])
    assert result.exit_code == 1
    assert f"order {first.id}: failed (RuntimeError)" in result.output
    assert "1 unpaid card checkout(s) cancelled" in result.output
    db.session.expire_all()
    assert (db.session.get(Order, first.id).status, db.session.get(Order, second.id).status) == (
        "pending", "cancelled")


def test_expire_switches_off_each_ended_subscription_on_its_own(app, clock, monkeypatch):
    """Each subscriber is locked and committed on its own, so a run holds no customer it has passed, and one that
    fails (logged, left for the next run) does not keep the others' departments on."""
    from limonbilling.services import entitlements

    from ..factories import activate, make_department

    support = make_department()
    package = make_package("subscription", [support], days=30)
    first, second = make_customer(), make_customer()
    for customer in (first, second):
        activate(customer, package)
    db.session.commit()
    clock.advance(days=30)
    real = entitlements.expire_subscriber

    def failing_for_the_first(customer_id):
        if customer_id == first.id:
            raise RuntimeError("a row we cannot read")
        return real(customer_id)

    monkeypatch.setattr(entitlements, "expire_subscriber", failing_for_the_first)
    result = app.test_cli_runner().invoke(args=["billing", "expire"])
    assert result.exit_code == 1
    assert f"customer {first.id}: failed (RuntimeError)" in result.output
    assert "1 customer(s) updated" in result.output
    db.session.expire_all()
    assert [len(db.session.get(Customer, c.id).departments) for c in (first, second)] == [1, 0]
    monkeypatch.setattr(entitlements, "expire_subscriber", real)
    again = app.test_cli_runner().invoke(args=["billing", "expire"])
    assert again.exit_code == 0 and "1 customer(s) updated" in again.output
