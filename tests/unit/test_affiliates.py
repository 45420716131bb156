"""Affiliates (services/affiliates.py): the referral remembered 30 days, the order's affiliate, assigning it by
hand, and the commission on the money kept (refunds earn nothing), rounded half up to the kuruş."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, RefundDestination
from limonbilling.services import ServiceError, ValidationFailed, affiliates, order_actions, placement, refunds

from ..factories import make_customer, make_package, make_transfer_account
from ..payment_support import AGENT, as_customer


def make_affiliate(code="BLOG", percent=10, name=None, active=True):
    affiliate = affiliates.create({"name": name or f"Affiliate {code}", "code": code, "commission_percent": percent},
                                  AGENT)
    affiliate.active = active
    db.session.commit()
    return affiliate


def transfer_order(package, affiliate=None, customer=None):
    make_transfer_account(package.currency)
    customer = customer or make_customer()
    order = placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                           actor=as_customer(customer), affiliate=affiliate, contracts_accepted=True)
    db.session.commit()
    return order


def paid_transfer_order(package, affiliate=None):
    order = transfer_order(package, affiliate)
    order_actions.accept_order(order, AGENT, received_on=date(2026, 3, 1))
    db.session.commit()
    return order


# --- the referral cookie ---------------------------------------------------------------------------------

def test_the_referral_counts_thirty_days_to_the_second_and_not_one_second_more(app, clock):
    blog = make_affiliate()
    cookie = affiliates.referral_cookie("blog")
    visit = clock.now()
    clock.set(visit + timedelta(days=29, hours=23, minutes=59))
    assert affiliates.referrer(cookie) == blog
    clock.set(visit + timedelta(days=30))  # the 30th day, to the second: still counts
    assert affiliates.referrer(cookie) == blog
    clock.set(visit + timedelta(days=30, seconds=1))
    assert affiliates.referrer(cookie) is None
    clock.set(visit + timedelta(days=31))
    assert affiliates.referrer(cookie) is None
    assert affiliates.REFERRAL_MAX_AGE == 30 * 24 * 3600  # the cookie's Max-Age says the same


def test_an_unknown_or_inactive_code_makes_no_cookie_and_any_letter_case_does(app):
    make_affiliate("BLOG")
    make_affiliate("OLD", active=False)
    assert affiliates.referral_cookie("nobody") is None
    assert affiliates.referral_cookie("old") is None
    assert affiliates.referral_cookie("") is None
    assert affiliates.referral_cookie(" blog ") is not None


def test_a_cookie_not_signed_by_us_or_of_an_affiliate_switched_off_since_names_no_one(app):
    blog = make_affiliate("BLOG")
    cookie = affiliates.referral_cookie("BLOG")
    head, _dot, signature = cookie.rpartition(".")
    assert affiliates.referrer(head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]) is None
    assert affiliates.referrer("eyJjb2RlIjoiQkxPRyJ9.x.y") is None
    assert affiliates.referrer(None) is None
    blog.active = False
    db.session.commit()
    assert affiliates.referrer(cookie) is None


def test_the_customers_order_records_the_affiliate_and_one_without_records_none(app):
    blog = make_affiliate()
    package = make_package("credit", credits=10)
    assert transfer_order(package, blog).affiliate_id == blog.id
    assert transfer_order(package).affiliate_id is None


# --- defining affiliates ---------------------------------------------------------------------------------

def test_codes_are_kept_in_capitals_and_unique_in_any_letter_case(app):
    blog = make_affiliate("Blog-1")
    assert blog.code == "BLOG-1"
    with pytest.raises(ValidationFailed) as refused:
        affiliates.create({"name": "Other", "code": "blog-1", "commission_percent": 5}, AGENT)
    assert "code" in refused.value.errors
    db.session.rollback()
    other = make_affiliate("OTHER")
    with pytest.raises(ValidationFailed):
        affiliates.update(other, {"name": "Other", "code": "BLOG-1", "commission_percent": 5}, AGENT)
    db.session.rollback()
    affiliates.update(blog, {"name": "Blog", "code": "blog-1", "commission_percent": 20}, AGENT)  # its own code
    assert blog.commission_percent == 20


@pytest.mark.parametrize("percent, valid", [(-1, False), (0, True), (100, True), (101, False), (None, False)])
def test_the_commission_is_a_whole_percentage_from_0_to_100(app, percent, valid):
    values = {"name": "Blog", "code": "BLOG", "commission_percent": percent}
    if valid:
        assert affiliates.create(values, AGENT).commission_percent == percent
    else:
        with pytest.raises(ValidationFailed) as refused:
            affiliates.create(values, AGENT)
        assert list(refused.value.errors) == ["commission_percent"]


@pytest.mark.parametrize("code", ["", "BL OG", "BLOĞ", "X" * 41, "a=1"])
def test_a_code_is_letters_digits_dashes_and_underscores(app, code):
    with pytest.raises(ValidationFailed) as refused:
        affiliates.create({"name": "Blog", "code": code, "commission_percent": 5}, AGENT)
    assert list(refused.value.errors) == ["code"]


# --- the order's affiliate by hand -----------------------------------------------------------------------

def test_an_agent_assigns_changes_and_clears_the_affiliate_each_change_audited_once(app):
    blog, news = make_affiliate("BLOG"), make_affiliate("NEWS")
    order = transfer_order(make_package("credit", credits=10))
    assert affiliates.assign(order, blog.id, AGENT) is True
    assert affiliates.assign(order, blog.id, AGENT) is False  # the same again changes nothing
    assert affiliates.assign(order, news.id, AGENT) is True
    assert affiliates.assign(order, None, AGENT) is True
    db.session.commit()
    assert order.affiliate_id is None
    details = [entry.details for entry in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "order.affiliate").order_by(AuditEntry.id))]
    assert [(d["previous"], d["affiliate"]) for d in details] == [(None, "BLOG"), ("BLOG", "NEWS"), ("NEWS", None)]


def test_assigning_an_affiliate_that_no_longer_exists_is_refused(app):
    order = transfer_order(make_package("credit", credits=10))
    with pytest.raises(ServiceError) as refused:
        affiliates.assign(order, 9999, AGENT)
    assert refused.value.code == "affiliate_unknown"


# --- what affiliates earned ------------------------------------------------------------------------------

@pytest.mark.parametrize("kept, percent, due", [
    (250, 1, 3),  # 2.5 kuruş: half up (banker's rounding would say 2)
    (249, 1, 2),  # 2.49
    (50, 1, 1),  # 0.5
    (49, 1, 0),  # 0.49
    (15000, 10, 1500), (12345, 0, 0), (12345, 100, 12345), (0, 50, 0),
])
def test_the_commission_is_rounded_half_up_to_the_kurus(kept, percent, due):
    assert affiliates.commission_minor(kept, percent) == due


def test_earnings_count_orders_and_the_money_kept_per_currency_and_refunds_earn_nothing(app):
    blog = make_affiliate("BLOG", percent=10)
    make_affiliate("NEWS", percent=50)
    try_package = make_package("credit", credits=10, price="100.05")
    usd_package = make_package("credit", credits=10, price="20.00", currency="USD")
    paid_transfer_order(try_package, blog)  # 100.05 kept
    partly = paid_transfer_order(try_package, blog)
    refunds.start(partly, to=RefundDestination.BALANCE, actor=AGENT, amount_minor=5000)  # 50.05 kept
    whole = paid_transfer_order(try_package, blog)
    refunds.start(whole, to=RefundDestination.BALANCE, actor=AGENT)  # nothing kept
    paid_transfer_order(usd_package, blog)
    transfer_order(try_package, blog)  # not paid yet
    paid_transfer_order(try_package)  # no affiliate
    db.session.commit()

    rows = {row.affiliate.code: row for row in affiliates.earnings()}
    assert rows["BLOG"].orders == 5
    assert rows["BLOG"].paid == {"TRY": 10005 + 5005, "USD": 2000}
    assert rows["BLOG"].commission == {"TRY": 1501, "USD": 200}  # 1501.0 of 15010 × 10%
    assert (rows["NEWS"].orders, rows["NEWS"].paid, rows["NEWS"].commission) == (0, {}, {})
    assert affiliates.earnings(blog.id)[0].paid == rows["BLOG"].paid


def test_the_commission_rounds_the_half_kurus_of_the_affiliates_total_up(app):
    blog = make_affiliate("BLOG", percent=50)
    paid_transfer_order(make_package("credit", credits=10, price="100.01"), blog)
    assert affiliates.earnings()[0].commission == {"TRY": 5001}  # 5000.5 kuruş


def test_a_top_up_the_affiliate_was_set_on_earns_nothing_the_order_its_balance_pays_earns(app):
    """The dashboard's formula leaves top-ups out: their money counts when the balance pays for an order. An agent
    may set an affiliate on any order, a top-up too; counted there as well, the same 100.00 earned twice."""
    blog = make_affiliate("BLOG", percent=10)
    make_transfer_account()
    customer = make_customer()
    top_up = placement.place_top_up(customer, "100,00", payment_method="bank_transfer", actor=as_customer(customer))
    affiliates.assign(top_up, blog.id, AGENT)
    order_actions.accept_order(top_up, AGENT, received_on=date(2026, 3, 1))
    db.session.commit()
    package = make_package("credit", credits=10, price="100.00")
    order = placement.place_customer_order(customer, package, payment_method="account_balance",
                                           actor=as_customer(customer), affiliate=blog, contracts_accepted=True)
    db.session.commit()
    assert (top_up.payment_status, order.payment_status) == ("paid", "paid")
    [row] = affiliates.earnings()
    assert (row.orders, row.paid, row.commission) == (2, {"TRY": 10000}, {"TRY": 1000})
