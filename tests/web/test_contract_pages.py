"""The distance-sale contracts and the privacy pages through the test client (issue 16): checkout refuses
without the box ticked and keeps the texts with it, the order pages show them, Settings → Legal texts,
/privacy, and the marketing consent on registration, the profile and the customer card."""
import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Customer, MarketingConsent, Order
from limonbilling.services import audit, balance, bank_transfer, settings
from limonbilling.services.settings import legal_text_key

from ..factories import make_agent, make_customer, make_department, make_package, sign_in

ACTOR = audit.Actor.system("test")
REFUSAL = ("Tick the box to confirm that you read and accept the pre-information form and the distance sales "
           "contract; we cannot take your order without it.")


@pytest.fixture
def shopper(app):
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon A.Ş.", iban="TR330006100519786457841326",
                              currency="TRY", actor=ACTOR)
    settings.update({"company_name": "Limon Destek"}, ACTOR)
    customer = make_customer(first_name="Ayşe", last_name="Yılmaz", language="en")
    balance.move(customer.id, "TRY", 200_00, "adjustment", reason="gift")
    db.session.commit()
    client = app.test_client()
    sign_in(client, customer)
    return client, customer, make_package("credit", [make_department()], credits=10, price="200.00")


def test_checkout_shows_both_contracts_filled_in_for_the_purchase(shopper):
    client, _customer, package = shopper
    page = client.get(f"/checkout/{package.id}").data.decode()
    assert "PRE-INFORMATION FORM" in page and "DISTANCE SALES CONTRACT" in page
    assert "Ayşe Yılmaz" in page and "Limon Destek" in page and "TRY\xa0200.00" in page
    assert "(given when you place the order)" in page and "{buyer}" not in page
    assert page.count('name="accept_contracts"') == 2  # balance and transfer (no card gateway here)


@pytest.mark.parametrize("method", ["transfer", "balance"])
def test_checkout_without_the_box_is_refused_with_a_clear_message(shopper, method):
    client, _customer, package = shopper
    refused = client.post(f"/checkout/{package.id}/{method}", data={"note": "For the office"})
    assert refused.status_code == 422
    page = refused.data.decode()
    assert REFUSAL in page and "For the office" in page  # what was written stays
    assert db.session.scalar(select(Order.id)) is None


def test_a_card_checkout_without_the_box_goes_to_no_bank(shopper, gateway):
    client, _customer, package = shopper
    refused = client.post(f"/checkout/{package.id}", data={
        "card_number": "4355 0843 5508 4358", "card_expiry": "12/30", "card_cvv": "000"})
    assert refused.status_code == 422 and REFUSAL in refused.data.decode()
    assert 'name="hash"' not in refused.data.decode() and db.session.scalar(select(Order.id)) is None


def test_the_accepted_contracts_are_on_both_order_pages(app, shopper):
    client, _customer, package = shopper
    placed = client.post(f"/checkout/{package.id}/transfer", data={"accept_contracts": "y"})
    assert placed.status_code == 302
    order = db.session.scalar(select(Order))
    assert order.contract.ip == "127.0.0.1" and order.number in order.contract.distance_sales
    page = client.get(f"/orders/{order.number}").data.decode()
    assert 'data-testid="order-contract"' in page and f"Order number: {order.number}" in page
    assert "Accepted on" in page and "127.0.0.1" in page
    agent = app.test_client()
    sign_in(agent, make_agent("billing"))
    admin_page = agent.get(f"/admin/billing/orders/{order.number}").data.decode()
    assert 'data-testid="order-contract"' in admin_page and "DISTANCE SALES CONTRACT" in admin_page


def test_the_legal_texts_page_documents_the_placeholders_and_refuses_an_unknown_one(app):
    agent = app.test_client()
    sign_in(agent, make_agent("settings"))
    page = agent.get("/admin/settings/legal").data.decode()
    assert "{order_number}" in page and "{withdrawal_exception}" in page and "have your lawyer review" in page
    key = legal_text_key("distance_sales", "tr")
    form = {legal_text_key(text, language): body for (text, language), body in (
        ((text, language), settings.get(legal_text_key(text, language)))
        for text in ("pre_information", "distance_sales", "privacy") for language in ("en", "tr"))}
    refused = agent.post("/admin/settings/legal", data={**form, key: "Sözleşme {alici_adi} için."})
    assert "Unknown placeholder {alici_adi}" in refused.data.decode()
    assert settings.get(key) == settings.DEFAULTS[key]
    saved = agent.post("/admin/settings/legal", data={**form, key: "Sözleşme {buyer} için."}, follow_redirects=True)
    assert "The legal texts are saved." in saved.data.decode()
    db.session.expire_all()
    assert settings.get(key) == "Sözleşme {buyer} için."
    billing_only = app.test_client()
    sign_in(billing_only, make_agent("billing"))
    assert billing_only.get("/admin/settings/legal").status_code in (403, 404)


def test_privacy_shows_the_current_notice_in_the_visitors_language(client):
    settings.update({"company_name": "Limon Destek"}, ACTOR)
    db.session.commit()
    page = client.get("/privacy").data.decode()
    assert "PRIVACY NOTICE" in page and "Data controller: Limon Destek" in page
    client.post("/language/tr")
    page = client.get("/privacy").data.decode()
    assert "AYDINLATMA METNİ" in page and "Veri sorumlusu: Limon Destek" in page


def _register(client, email: str, **extra):
    page = client.get("/register").data.decode()
    assert 'href="/privacy"' in page and 'name="marketing_consent"' in page
    return client.post("/register", data={"account_type": "individual", "first_name": "Deniz", "last_name": "Kaya",
                                          "email": email, "phone": "0532 123 45 67", "password": "kendi-sifrem-7",
                                          "password_again": "kendi-sifrem-7", "language": "", **extra})


def test_registration_records_the_marketing_consent_only_when_ticked(client, clock):
    assert _register(client, "with@example.com", marketing_consent="y").status_code == 302
    assert _register(client, "without@example.com").status_code == 302
    rows = db.session.execute(select(Customer.email, MarketingConsent.granted, MarketingConsent.changed_at)
                              .join(MarketingConsent, MarketingConsent.customer_id == Customer.id)).all()
    assert rows == [("with@example.com", True, clock.now())]


def test_the_profile_changes_the_consent_and_the_customer_card_shows_each_change(app, clock):
    customer = make_customer(language="en")
    client = app.test_client()
    sign_in(client, customer)
    assert 'name="marketing-marketing_consent"' in client.get("/profile").data.decode()
    page = client.post("/profile/marketing", data={"marketing-marketing_consent": "y"},
                       follow_redirects=True).data.decode()
    assert "You will get our news and offers by e-mail." in page and "Given on" in page
    clock.advance(days=2)
    page = client.post("/profile/marketing", data={}, follow_redirects=True).data.decode()
    assert "You will no longer get our news and offers by e-mail." in page and "Withdrawn on" in page
    changes = db.session.scalars(select(MarketingConsent).order_by(MarketingConsent.id)).all()
    assert [(c.granted, c.ip) for c in changes] == [(True, "127.0.0.1"), (False, "127.0.0.1")]
    assert changes[1].changed_at - changes[0].changed_at == clock.now() - changes[0].changed_at
    agent = app.test_client()
    sign_in(agent, make_agent("customers"))
    card = agent.get(f"/admin/customers/{customer.id}").data.decode()
    section = card.split('data-testid="marketing-consent"', 1)[1].split("</dd>", 1)[0]
    assert "not consented" in section and "withdrawn" in section and "given" in section
