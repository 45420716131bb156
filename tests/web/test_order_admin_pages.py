"""The order features of issue 8 through the test client: promo codes, balance, statuses, placing orders,
refunds to balance, cancellation requests, and the checkout that uses them."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import CancellationRequest, Order, OrderStatus, PromoCode
from limonbilling.services import audit, balance, bank_transfer, entitlements, placement, refunds

from ..factories import (
    activate,
    make_agent,
    make_customer,
    make_department,
    make_package,
    make_transfer_account,
    sign_in,
)

ACTOR = audit.Actor.system("test")


@pytest.fixture
def support(app):
    return make_department("Support", credit_per_request=1)


@pytest.fixture
def agent_client(app):
    client = app.test_client()
    sign_in(client, make_agent("billing", "settings", "customers"))
    return client


@pytest.fixture
def shopper(app, support):
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon A.Ş.", iban="TR330006100519786457841326",
                              currency="TRY", actor=ACTOR)
    customer = make_customer()
    client = app.test_client()
    sign_in(client, customer)
    return client, customer, make_package("credit", [support], credits=10, price="200.00")


def test_promo_code_page_creates_refuses_and_disables(agent_client, support):
    page = agent_client.post("/admin/billing/promo-codes", data={"code": "x y", "kind": "percent", "value": "150",
                                                                 "currency": "TRY"}).data.decode()
    assert "Use letters, digits" in page and "A percentage from 1 to 99." in page
    assert db.session.scalar(db.select(PromoCode)) is None
    page = agent_client.post("/admin/billing/promo-codes", data={
        "code": "spring", "kind": "fixed", "value": "25.50", "currency": "TRY", "max_uses": "3"},
        follow_redirects=True).data.decode()
    assert "Promo code SPRING is created." in page and "0 / 3" in page
    code = db.session.scalar(db.select(PromoCode))
    assert (code.kind, code.value, code.currency) == ("fixed", 2550, "TRY")
    agent_client.post(f"/admin/billing/promo-codes/{code.id}/active", data={})
    db.session.expire_all()
    assert not db.session.get(PromoCode, code.id).active


def test_checkout_applies_a_promo_code_and_orders_with_it(shopper):
    client, customer, package = shopper
    from limonbilling.services import promo_codes

    promo_codes.create({"code": "TEN", "kind": "percent", "value": "10"}, ACTOR)
    db.session.commit()
    assert "This promo code does not exist." in client.get(f"/checkout/{package.id}?promo=nope").data.decode()
    page = client.get(f"/checkout/{package.id}?promo=ten").data.decode()
    assert 'data-testid="total">TRY\xa0180.00' in page and 'name="promo_code" type="hidden" value="TEN"' in page
    client.post(f"/checkout/{package.id}/transfer", data={"promo_code": "TEN", "accept_contracts": "y"})
    order = db.session.scalar(db.select(Order))
    assert (order.promo_code, order.discount_minor, order.amount_minor) == ("TEN", 2000, 18000)
    assert db.session.scalar(db.select(PromoCode)).uses == 1


def test_checkout_pays_from_the_balance_only_when_it_covers_the_total(shopper):
    client, customer, package = shopper
    balance.move(customer.id, "TRY", 19999, "adjustment", reason="gift")
    db.session.commit()
    assert "from my balance" not in client.get(f"/checkout/{package.id}").data.decode()
    refused = client.post(f"/checkout/{package.id}/balance", data={"accept_contracts": "y"})
    assert refused.status_code == 422 and "does not cover" in refused.data.decode()
    balance.move(customer.id, "TRY", 1, "adjustment", reason="gift")
    db.session.commit()
    assert "Pay TRY\xa0200.00 from my balance" in client.get(f"/checkout/{package.id}").data.decode()
    page = client.post(f"/checkout/{package.id}/balance", data={"accept_contracts": "y"},
                       follow_redirects=True).data.decode()
    assert "is paid from your account balance" in page
    order = db.session.scalar(db.select(Order))
    assert (order.payment_method, order.payment_status, order.activated) == ("account_balance", "paid", True)
    db.session.expire_all()
    assert balance.amount(customer, "TRY") == 0 and customer.credits == 10


def test_identity_rule_set_on_the_settings_page_stops_checkout(agent_client, shopper):
    client, customer, package = shopper
    data = {"require_identity_verification": "y", "fraud_check_enabled": "y", "fraud_threshold": "60",
            "fraud_failed_cards_points": "40", "fraud_failed_cards_limit": "3", "fraud_many_orders_points": "30",
            "fraud_many_orders_limit": "3", "fraud_many_orders_minutes": "60", "fraud_unverified_email_points": "10",
            "fraud_price_points": "30", "fraud_price_factor": "5", "fraud_ip_failed_customers_points": "30",
            "fraud_ip_failed_customers_limit": "3"}
    assert "are saved" in agent_client.post("/admin/settings/orders", data=data,
                                            follow_redirects=True).data.decode()
    assert "identity must be verified" in client.get(f"/checkout/{package.id}").data.decode()
    refused = client.post(f"/checkout/{package.id}/transfer", data={"accept_contracts": "y"})
    assert "identity must be verified" in refused.data.decode()
    assert db.session.scalar(db.select(Order)) is None


def test_custom_statuses_on_the_pages(agent_client, shopper):
    _client, customer, package = shopper
    agent_client.post("/admin/settings/order-statuses", data={"name": "Documents", "colour": "#1a7f37",
                                                              "counts_as": "pending"})
    status = db.session.scalar(db.select(OrderStatus))
    page = agent_client.post("/admin/settings/order-statuses", data={"name": "documents", "colour": "#000000",
                                                                     "counts_as": "pending"}).data.decode()
    assert "exists already" in page
    order = placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                           actor=audit.Actor.of(customer), contracts_accepted=True)
    db.session.commit()
    agent_client.post("/admin/billing/orders/bulk", data={"numbers": [order.number], "status": f"custom:{status.id}"})
    db.session.expire_all()
    assert db.session.get(Order, order.id).custom_status_id == status.id
    assert order.number in agent_client.get(f"/admin/billing/orders?status=custom:{status.id}").data.decode()
    page = agent_client.post(f"/admin/settings/order-statuses/{status.id}/delete", data={},
                             follow_redirects=True).data.decode()
    assert "1 order has this status" in page and db.session.get(OrderStatus, status.id) is not None


def test_a_status_orders_carry_keeps_what_it_counts_as(app, agent_client, shopper):
    """Attack pass 7: editing a custom status rewrote the core status of every order carrying it, in one UPDATE
    with no lock, no move of the lifecycle table and no settle, for an agent with `settings` alone: an unpaid
    order became Active (which Accept and bulk refuse without its money), a paid top-up Cancelled."""
    _client, customer, package = shopper
    agent_client.post("/admin/settings/order-statuses", data={"name": "Documents", "colour": "#1a7f37",
                                                              "counts_as": "pending"})
    status = db.session.scalar(db.select(OrderStatus))
    order = placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                           actor=audit.Actor.of(customer), contracts_accepted=True)
    db.session.commit()
    agent_client.post("/admin/billing/orders/bulk", data={"numbers": [order.number], "status": f"custom:{status.id}"})
    settings_only = app.test_client()
    sign_in(settings_only, make_agent("settings"))
    page = settings_only.post(f"/admin/settings/order-statuses/{status.id}", data={
        "name": "Documents", "colour": "#1a7f37", "counts_as": "active"}).data.decode()
    assert "1 order has this status" in page
    db.session.expire_all()
    assert (db.session.get(Order, order.id).status, db.session.get(OrderStatus, status.id).counts_as) == (
        "pending", "pending")
    settings_only.post(f"/admin/settings/order-statuses/{status.id}", data={
        "name": "Waiting for documents", "colour": "#000000", "counts_as": "pending"})
    db.session.expire_all()
    assert db.session.get(OrderStatus, status.id).name == "Waiting for documents"  # a new name or colour is fine


def test_agent_places_orders_and_refunds_one_to_the_balance(agent_client, support):
    customer = make_customer()
    package = make_package("credit", [support], credits=10, price="150.00")
    url = f"/admin/billing/customers/{customer.id}/orders/new"
    page = agent_client.post(url, data={"package_id": package.id, "payment_method": "manual",
                                        "price_override": "abc"}).data.decode()
    assert "Enter a price like 150.00." in page and db.session.scalar(db.select(Order)) is None
    agent_client.post(url, data={"package_id": package.id, "payment_method": "manual", "price_override": "120",
                                 "create_invoice": "y"})
    order = db.session.scalar(db.select(Order))
    assert (order.status, order.payment_status, order.amount_minor, order.price_overridden) == (
        "active", "paid", 12000, True)
    page = agent_client.get(f"/admin/billing/orders/{order.number}/refund").data.decode()
    assert "account balance" in page and 'value="bank"' not in page  # no card payment to send back
    agent_client.post(f"/admin/billing/orders/{order.number}/refund", data={"to": "balance"})
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert (order.status, order.payment_status) == ("cancelled", "refunded")
    assert balance.amount(customer, "TRY") == 12000 and order.customer.credits == 0
    page = agent_client.get(f"/admin/billing/subscriptions/{customer.id}").data.decode()
    assert "TRY\xa0120.00" in page and "Refund of order" in page


def test_cancellation_request_from_the_portal_to_the_agent(app, agent_client, support, clock):
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=30))
    client = app.test_client()
    sign_in(client, customer)
    page = client.post("/subscription/cancel", data={"timing": "now", "reason": ""}).data.decode()
    assert "Tell us why" in page
    page = client.post("/subscription/cancel", data={"timing": "now", "reason": "Closing the company"},
                       follow_redirects=True).data.decode()
    assert "We will answer soon" in page
    request = db.session.scalar(db.select(CancellationRequest))
    assert "Closing the company" in agent_client.get("/admin/billing/cancellations").data.decode()
    page = agent_client.post(f"/admin/billing/cancellations/{request.id}/reject", data={"note": ""},
                             follow_redirects=True).data.decode()
    assert "Tell the customer why" in page
    agent_client.post(f"/admin/billing/cancellations/{request.id}/approve", data={"note": "Done"})
    db.session.expire_all()
    assert db.session.get(CancellationRequest, request.id).state == "approved"
    assert not entitlements.entitlement(customer).subscription_active


def test_order_list_pages_by_keyset(app, agent_client, support):
    app.config["ITEMS_PER_PAGE"] = 2
    package = make_package("credit", [support])
    placed = [placement.place_agent_order(make_customer(), package, payment_method="manual", actor=ACTOR).number
              for _ in range(5)]
    db.session.commit()
    seen, url = [], "/admin/billing/orders"
    for _ in range(3):
        page = agent_client.get(url).data.decode()
        seen += [number for number in reversed(placed) if number in page and number not in seen]
        older = [part.split('"')[0] for part in page.split('href="/admin/billing/orders?before=')[1:]]
        if not older:
            break
        url = f"/admin/billing/orders?before={older[0]}"
    assert seen == list(reversed(placed))
    newer = agent_client.get(url).data.decode().split('href="/admin/billing/orders?after=')[1].split('"')[0]
    assert placed[2] in agent_client.get(f"/admin/billing/orders?after={newer}").data.decode()


def test_order_and_customer_lists_sort_oldest_first_across_pages(app, client):
    import re

    from ..factories import make_agent, make_customer, sign_in

    app.config["ITEMS_PER_PAGE"] = 2
    made = [make_customer(email=f"s{n}@example.com") for n in range(5)]
    sign_in(client, make_agent("customers"))
    seen, url = [], "/admin/customers?sort=oldest"
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += re.findall(r"<td>(s\d@example\.com)</td>", page)
        newer = re.search(r'href="(/admin/customers\?after=\d+[^"]*)"', page)
        url = newer.group(1).replace("&amp;", "&") if newer else None
        assert url is None or "sort=oldest" in url
    assert seen == [customer.email for customer in made]

    from limonbilling.services import placement

    from ..factories import make_package
    from ..payment_support import AGENT

    placed = [placement.place_agent_order(customer, make_package("credit"), payment_method="manual",
                                          actor=AGENT).number for customer in made[:3]]
    db.session.commit()
    sign_in(client, make_agent("billing"))
    oldest = client.get("/admin/billing/orders?sort=oldest").get_data(as_text=True)
    assert [number for number in re.findall(r">(\d{10})</a>", oldest)] == placed[:2]
    newest = client.get("/admin/billing/orders").get_data(as_text=True)
    assert [number for number in re.findall(r">(\d{10})</a>", newest)] == placed[:0:-1]


def test_the_pending_badge_counts_up_to_its_limit_then_says_plus(app, agent_client, support, monkeypatch):
    from limonbilling.admin import orders as order_pages

    monkeypatch.setattr(order_pages, "PENDING_BADGE_MOST", 2)
    package = make_package("credit", [support])
    badge = '<span class="badge text-bg-warning">'
    for count, shown in ((2, "2"), (3, "2+")):
        while db.session.scalar(db.select(db.func.count(Order.id)).where(Order.status == "pending")) < count:
            make_transfer_account()
            placement.place_agent_order(make_customer(), package, payment_method="bank_transfer", actor=ACTOR)
            db.session.commit()
        page = agent_client.get("/admin/billing/orders").data.decode()
        assert f"{badge}{shown}</span>" in page


def test_balance_rows_are_named_in_the_reader_s_language(app, agent_client, support):
    """A refund to the balance made by a Turkish-speaking agent is named in English on an English page and the
    reverse: the row keeps its kind and order, not words (they were stored in the language of whoever refunded)."""
    from flask_babel import force_locale

    from limonbilling.labels import balance_reason
    from limonbilling.models import BalanceEntry

    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("credit", [support]), payment_method="manual",
                                        actor=ACTOR)
    db.session.commit()
    with force_locale("tr"):
        refunds.start(order, to="balance", actor=ACTOR)
    db.session.commit()
    entry = db.session.scalar(db.select(BalanceEntry).where(BalanceEntry.kind == "refund"))
    assert entry.reason is None
    with force_locale("en"):
        assert balance_reason(entry) == f"Refund of order {order.number}"
    with force_locale("tr"):
        assert balance_reason(entry) == f"{order.number} numaralı sipariş iadesi"
    assert balance_reason(BalanceEntry(kind="adjustment", reason="goodwill")) == "goodwill"
