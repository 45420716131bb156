"""The dashboard's figures (services/reports.py) and the dashboard page that shows them."""
from limonbilling.extensions import db
from limonbilling.services import charging, placement, reports

from ..factories import (
    activate,
    make_agent,
    make_customer,
    make_department,
    make_package,
    make_transfer_account,
    sign_in,
)
from ..payment_support import AGENT, refund_to_balance


def manual_order(customer, package):
    order = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    db.session.commit()
    return order


def test_revenue_by_month_keeps_currencies_apart_and_leaves_what_was_refunded_out(app, clock):
    lira, euro = make_package("credit", price="100.00"), make_package("credit", price="40.00", currency="EUR")
    manual_order(make_customer(), lira)
    clock.advance(days=31)  # the next month
    manual_order(make_customer(), lira)
    manual_order(make_customer(), euro)
    refunded = manual_order(make_customer(), lira)
    refund_to_balance(refunded, AGENT)
    partly = manual_order(make_customer(), euro)
    refund_to_balance(partly, AGENT, amount_minor=1)  # one cent back: the rest is kept
    db.session.commit()
    months = reports.last_months(12)
    revenue = reports.revenue_by_month(12)
    assert months[-2:] == ["2026-03", "2026-04"] and len(months) == 12
    assert revenue["TRY"]["2026-03"] == 10000 and revenue["TRY"]["2026-04"] == 10000
    assert revenue["EUR"]["2026-04"] == 4000 + 3999 and sum(revenue["EUR"].values()) == 7999


def test_orders_by_status_and_pending(app):
    package = make_package("credit")
    manual_order(make_customer(), package)
    make_transfer_account()
    placement.place_agent_order(make_customer(), package, payment_method="bank_transfer", actor=AGENT)
    db.session.commit()
    assert reports.orders_by_status() == {"pending": 1, "active": 1, "fraud": 0, "cancelled": 0}
    assert reports.pending_orders() == 1


def test_credits_sold_and_used_by_department(app):
    web, mail = make_department("Web", credit_per_request=3), make_department("Mail", credit_per_request=1)
    customer = make_customer()
    activate(customer, make_package("credit", [web, mail], credits=20))
    charging.charge_usage(customer.id, web.id, "ticket", "T-1")
    charging.charge_usage(customer.id, mail.id, "chat", "C-1")
    db.session.commit()
    rows = {row.department: (row.sold, row.used) for row in reports.credits_by_department()}
    assert rows == {"Web": (20, 3), "Mail": (20, 1)}


def test_subscriptions_ending_in_the_next_30_days(app, clock):
    soon, later, renewed = make_customer(first_name="Soon"), make_customer(first_name="Later"), make_customer()
    activate(soon, make_package("subscription", days=10))
    activate(later, make_package("subscription", days=40))
    monthly = make_package("subscription", days=20)
    activate(renewed, monthly)
    activate(renewed, monthly)  # renewed ahead: ends in 40 days
    ending = reports.subscriptions_ending(30)
    assert [(row.customer.first_name, (row.ends_at - clock.now()).days) for row in ending] == [("Soon", 10)]


def test_the_dashboard_shows_the_figures_to_billing_agents_only(app, client):
    manual_order(make_customer(), make_package("credit", price="1250.00"))
    make_transfer_account()
    placement.place_agent_order(make_customer(), make_package("credit"), payment_method="bank_transfer", actor=AGENT)
    db.session.commit()
    sign_in(client, make_agent("billing"))
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="pending-orders">1<' in page
    assert "TRY\xa01,250.00" in page  # the revenue table, money in English
    assert 'id="dashboard-data"' in page and "chart.umd.min.js" in page

    other = app.test_client()
    sign_in(other, make_agent("support"))
    page = other.get("/admin/").get_data(as_text=True)
    assert "Revenue by month" not in page and "dashboard-data" not in page


def test_revenue_months_are_istanbul_months(app, clock):
    """Days are Istanbul days (README): a sale at 01:30 on 1 April in Istanbul (22:30 UTC on 31 March) is April's,
    and at that moment April is "this month" on the dashboard; one at 23:00 on 31 March there stays March's."""
    from datetime import UTC, datetime

    package = make_package("credit", price="100.00")
    clock.set(datetime(2026, 3, 31, 20, 0, tzinfo=UTC))  # 23:00 in Istanbul, still March
    manual_order(make_customer(), package)
    clock.set(datetime(2026, 3, 31, 22, 30, tzinfo=UTC))  # 01:30 on 1 April in Istanbul
    manual_order(make_customer(), package)
    assert reports.last_months(12)[-1] == "2026-04"
    revenue = reports.revenue_by_month(12)["TRY"]
    assert (revenue["2026-03"], revenue["2026-04"]) == (10000, 10000)


def test_money_the_bank_took_that_we_refuse_is_no_revenue_while_it_goes_back(gateway):
    """A half 3-D approval is returned to the card by itself; until the bank has answered the return (or when it
    refuses it) the money is here, but it paid for nothing: no revenue, no affiliate commission on it."""
    from limonbilling.services import affiliates, card_payments

    from ..payment_support import BANK, bank_answer, card_order

    affiliate = affiliates.create({"name": "Partner", "code": "PARTNER", "commission_percent": 10, "active": True},
                                  AGENT)
    order, attempt = card_order(make_customer(), make_package("credit", price="100.00"))
    order.affiliate_id = affiliate.id
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(attempt, mdStatus="2"), BANK)
    db.session.commit()
    assert [(refund.automatic, refund.state) for refund in order.refunds] == [(True, "created")]
    assert reports.revenue_by_month(12) == {}
    assert affiliates.earnings(affiliate.id)[0].paid == {}


def test_credits_sold_by_an_order_cancelled_and_accepted_again_count_once(app):
    """10 credits sold, 6 used, Cancel took back the 4 left, Accept with the same money gave those 4 back (twice
    over): 10 credits were sold and 6 used, not 4 sold (the revoked grant left out, the restored one counted)."""
    from limonbilling.services import order_actions

    web = make_department("Web", credit_per_request=1)
    customer = make_customer()
    order = manual_order(customer, make_package("credit", [web], credits=10))
    for reference in range(6):
        charging.charge_usage(customer.id, web.id, "ticket", f"T-{reference}")
    db.session.commit()
    for _round in range(2):
        order_actions.cancel_order(order, AGENT)
        db.session.commit()
        order_actions.back_to_pending(order, AGENT)
        order_actions.accept_order(order, AGENT)
        db.session.commit()
    assert customer.credits == 4
    assert [(row.department, row.sold, row.used) for row in reports.credits_by_department()] == [("Web", 10, 6)]
