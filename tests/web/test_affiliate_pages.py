"""Billing → Affiliates, the order page's affiliate, and the `?ref=` link remembered at checkout."""
import csv
import io
import re
from http.cookies import SimpleCookie

from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Affiliate, AuditEntry, Order
from limonbilling.services import affiliates, announcements, audit, bank_transfer
from limonbilling.services.demo import load_demo_data

from ..factories import make_agent, make_customer, make_package, sign_in
from ..payment_support import AGENT
from ..unit.test_affiliates import make_affiliate, paid_transfer_order, transfer_order


def _referral_header(response) -> SimpleCookie | None:
    headers = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("referral=")]
    return SimpleCookie(headers[-1]) if headers else None


def test_agents_create_affiliates_and_see_clear_errors(billing_client):
    response = billing_client.post("/admin/billing/affiliates", data={
        "name": "Tech Blog", "code": "techblog", "commission_percent": "15"})
    assert response.status_code == 302
    page = billing_client.get("/admin/billing/affiliates").get_data(as_text=True)
    assert "Affiliate Tech Blog is created; its link is http://localhost/?ref=TECHBLOG" in page
    assert "TECHBLOG" in page and "15%" in page

    duplicate = billing_client.post("/admin/billing/affiliates", data={
        "name": "Copy", "code": "TechBlog", "commission_percent": "5"}).get_data(as_text=True)
    assert "Another affiliate has this code (letter case does not matter)." in duplicate
    for percent in ("101", "-1"):
        out_of_range = billing_client.post("/admin/billing/affiliates", data={
            "name": "Copy", "code": "COPY", "commission_percent": percent}).get_data(as_text=True)
        assert "A whole percentage from 0 to 100." in out_of_range
        assert re.search(r'id="commission_percent"[^>]*is-invalid|is-invalid[^>]*id="commission_percent"', out_of_range)
    assert db.session.scalar(select(Affiliate.code).where(Affiliate.name == "Copy")) is None


def test_agents_edit_and_switch_off_an_affiliate(billing_client):
    blog = make_affiliate("BLOG", percent=10)
    response = billing_client.post(f"/admin/billing/affiliates/{blog.id}", data={
        "name": "The Blog", "code": "blog2", "commission_percent": "12"})
    assert response.status_code == 302
    db.session.expire_all()
    assert (blog.name, blog.code, blog.commission_percent) == ("The Blog", "BLOG2", 12)
    billing_client.post(f"/admin/billing/affiliates/{blog.id}/active", data={})
    db.session.expire_all()
    assert blog.active is False
    assert "no longer refers customers" in billing_client.get("/admin/billing/affiliates").get_data(as_text=True)
    billing_client.post(f"/admin/billing/affiliates/{blog.id}/active", data={"enabled": "y", "back": "detail"})
    db.session.expire_all()
    assert blog.active is True


def test_the_list_and_the_detail_show_orders_paid_and_commission_and_the_csv_says_the_same(billing_client):
    blog = make_affiliate("BLOG", percent=50)
    order = paid_transfer_order(make_package("credit", credits=10, price="100.01"), blog)
    page = billing_client.get("/admin/billing/affiliates").get_data(as_text=True)
    assert "TRY\xa0100.01" in page and "TRY\xa050.01" in page  # 5000.5 kuruş rounded up
    detail = billing_client.get(f"/admin/billing/affiliates/{blog.id}").get_data(as_text=True)
    assert order.number in detail and "http://localhost/?ref=BLOG" in detail
    rows = list(csv.reader(io.StringIO(billing_client.get("/admin/billing/affiliates.csv").get_data(as_text=True)
                                       .lstrip("\ufeff"))))
    assert rows == [["name", "code", "commission_percent", "active", "orders", "currency", "paid", "commission"],
                    ["Affiliate BLOG", "BLOG", "50", "1", "1", "TRY", "100.01", "50.01"]]


def test_an_affiliate_without_orders_has_one_csv_line_and_names_cannot_become_formulas(billing_client):
    affiliates.create({"name": "=HYPERLINK(1)", "code": "X", "commission_percent": 5}, AGENT)
    db.session.commit()
    rows = list(csv.reader(io.StringIO(billing_client.get("/admin/billing/affiliates.csv").get_data(as_text=True))))
    assert rows[1] == ["'=HYPERLINK(1)", "X", "5", "1", "0", "", "0.00", "0.00"]


def test_the_order_page_assigns_changes_and_clears_the_affiliate(billing_client):
    blog, news = make_affiliate("BLOG"), make_affiliate("NEWS")
    order = transfer_order(make_package("credit", credits=10), blog)
    page = billing_client.get(f"/admin/billing/orders/{order.number}").get_data(as_text=True)
    assert "Affiliate BLOG</a>" in page and f'<option selected value="{blog.id}">' in page
    for chosen, flash in ((news.id, "is saved"), (news.id, "already had this affiliate"), ("", "is saved")):
        response = billing_client.post(f"/admin/billing/orders/{order.number}/affiliate",
                                       data={"affiliate_id": chosen}, follow_redirects=True)
        assert flash in response.get_data(as_text=True)
    db.session.expire_all()
    assert order.affiliate_id is None
    assert len(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "order.affiliate")).all()) == 2
    refused = billing_client.post(f"/admin/billing/orders/{order.number}/affiliate", data={"affiliate_id": "999"},
                                  follow_redirects=True)
    assert "Choose an affiliate from the list." in refused.get_data(as_text=True)


def test_affiliates_need_the_billing_permission(app):
    client = app.test_client()
    sign_in(client, make_agent("support", "customers"))
    assert client.get("/admin/billing/affiliates").status_code == 403
    assert client.get("/admin/billing/affiliates.csv").status_code == 403


# --- the link ------------------------------------------------------------------------------------------

def test_a_ref_link_sets_a_signed_cookie_for_30_days_and_the_last_valid_code_wins(app, client):
    make_affiliate("BLOG")
    make_affiliate("NEWS")
    first = _referral_header(client.get("/?ref=blog"))  # redirected to sign in, remembered all the same
    assert first is not None
    morsel = first["referral"]
    assert morsel["max-age"] == str(30 * 24 * 3600) and morsel["httponly"] and morsel["samesite"] == "Lax"
    assert affiliates.referrer(morsel.value).code == "BLOG"
    assert _referral_header(client.get("/login?ref=nobody")) is None  # unknown: ignored, BLOG stays
    assert _referral_header(client.get("/register")) is None
    assert affiliates.referrer(client.get_cookie("referral").value).code == "BLOG"
    client.get("/register?ref=NEWS")
    assert affiliates.referrer(client.get_cookie("referral").value).code == "NEWS"


def test_admin_pages_do_not_remember_referrals(app, client):
    make_affiliate("BLOG")
    assert _referral_header(client.get("/admin/login?ref=BLOG")) is None


def test_an_order_at_checkout_records_the_affiliate_of_the_link(app, client, clock):
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon", iban="TR330006100519786457841326",
                              currency="TRY", actor=audit.Actor.system("t"))
    blog = make_affiliate("BLOG")
    package = make_package("credit", credits=10)
    customer = make_customer()
    client.get("/?ref=BLOG")
    sign_in(client, customer)
    response = client.post(f"/checkout/{package.id}/transfer", data={"accept_contracts": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    order = db.session.scalar(select(Order).where(Order.customer_id == customer.id))
    assert order.affiliate_id == blog.id


def test_the_demo_data_has_an_affiliate_and_an_announcement_in_each_language_once(app):
    created = load_demo_data()
    db.session.commit()
    assert "affiliate PARTNER (link /?ref=PARTNER)" in created and "announcement (in English and Turkish)" in created
    assert affiliates.find("partner").commission_percent == 10
    assert [a.title for a in announcements.latest("tr")] == ["VIP desteğe hoş geldiniz"]
    assert [a.title for a in announcements.latest("en")] == ["Welcome to VIP support"]
    again = load_demo_data()
    assert not any(line.startswith(("affiliate", "announcement")) for line in again)
