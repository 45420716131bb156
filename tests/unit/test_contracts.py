"""The contracts of a distance sale (issue 16): the legal texts and their placeholders, acceptance as a rule of
placing an order whatever the payment method, the texts frozen with the order, the purchase mail carrying
them, and the marketing consent recorded with its times."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import MarketingConsent, Notification, Order, OrderContract
from limonbilling.services import ValidationFailed, audit, balance, consents, contracts, customers, placement, settings
from limonbilling.services.settings import legal_text_key

from ..factories import make_customer, make_department, make_package, make_transfer_account
from ..payment_support import as_customer

AGENT = audit.Actor.system("test")
CONTRACT_KEY = legal_text_key("distance_sales", "en")


@pytest.fixture
def package(app):
    return make_package("credit", [make_department("Support")], credits=10, price="100.00")


def _place(customer, package, method="bank_transfer", **kwargs):
    make_transfer_account()
    return placement.place_customer_order(customer, package, payment_method=method, actor=as_customer(customer),
                                          ip="203.0.113.7", **{"contracts_accepted": True, **kwargs})


def test_the_contracts_kept_with_the_order_are_filled_in_for_its_purchase(package):
    settings.update({"company_name": "Limon Destek A.Ş.", "seller_address": "Kızılay, Ankara"}, AGENT)
    customer = make_customer(first_name="Gökçe", last_name="Şahin", language="tr")
    order = _place(customer, package, language="tr")
    db.session.commit()
    contract = db.session.get(OrderContract, order.id)
    assert (contract.language, contract.ip, contract.accepted_at) == ("tr", "203.0.113.7", order.created_at)
    for text in (contract.pre_information, contract.distance_sales):
        assert "{" not in text and "}" not in text
        assert "Limon Destek A.Ş." in text and "Kızılay, Ankara" in text
        assert "Gökçe Şahin" in text and customer.email in text
        assert f"Sipariş numarası: {order.number}" in text
        assert f"Paket: {package.name}" in text
        assert "₺100,00" in text and "(KDV: ₺16,67)" in text  # 20% inside the price
        assert "14 gün içinde" in text and "Madde 15(1)(ğ)" in text  # the withdrawal right and its exception
    assert contract.pre_information.startswith("[ŞABLON:")  # the shipped template says it needs a lawyer


def test_the_texts_are_filled_in_the_language_shown(package):
    order = _place(make_customer(language="tr"), package, language="en")
    assert order.contract.language == "en"
    assert "DISTANCE SALES CONTRACT" in order.contract.distance_sales
    assert "TRY\xa0100.00" in order.contract.distance_sales and "within 14 days" in order.contract.distance_sales


@pytest.mark.parametrize("method", ["card", "bank_transfer", "account_balance"])
def test_the_service_refuses_an_order_whose_buyer_did_not_accept_the_contracts(package, gateway, method):
    customer = make_customer()
    balance.move(customer.id, "TRY", 100_00, "adjustment", reason="gift")
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        _place(customer, package, method, contracts_accepted=False)
    assert list(refused.value.errors) == ["accept_contracts"]
    assert "read and accept the pre-information form" in refused.value.errors["accept_contracts"][0]
    db.session.rollback()
    assert db.session.scalar(select(Order.id)) is None
    assert _place(customer, package, method).contract is not None  # accepted: the same order goes through


def test_an_edit_of_the_texts_never_changes_what_a_buyer_accepted(package, clock):
    first = _place(make_customer(), package, language="en")
    db.session.commit()
    accepted = (first.contract.pre_information, first.contract.distance_sales)
    contracts.update_texts({CONTRACT_KEY: "New contract for {buyer}, order {order_number}."}, AGENT)
    settings.update({"company_name": "Renamed Ltd."}, AGENT)
    db.session.commit()
    db.session.expire_all()
    kept = db.session.get(OrderContract, first.id)
    assert (kept.pre_information, kept.distance_sales) == accepted and "Renamed" not in kept.pre_information
    clock.advance(days=1)
    later = make_customer(first_name="Deniz", last_name="Kaya")
    second = _place(later, package, language="en")
    assert second.contract.distance_sales == f"New contract for Deniz Kaya, order {second.number}."
    assert "Renamed Ltd." in second.contract.pre_information


def test_an_unknown_placeholder_is_refused_and_nothing_is_saved(app):
    privacy_key = legal_text_key("privacy", "tr")
    with pytest.raises(ValidationFailed) as refused:
        contracts.update_texts({CONTRACT_KEY: "For {buyer}: {customer_name} pays {price} {customer_name}.",
                                privacy_key: "Veri sorumlusu {seller}; alıcı {buyer}.",
                                legal_text_key("pre_information", "en"): "   "}, AGENT)
    errors = refused.value.errors
    assert errors[CONTRACT_KEY] == ["Unknown placeholder {customer_name}: use only those listed on this page, or "
                                    "write the words without braces."]
    assert "{buyer}" in errors[privacy_key][0]  # the privacy notice is read before any purchase
    assert errors[legal_text_key("pre_information", "en")] == ["Write the text; it cannot be empty."]
    db.session.rollback()
    assert contracts.text("distance_sales", "en") == settings.DEFAULTS[CONTRACT_KEY]
    assert contracts.update_texts({CONTRACT_KEY: "Sold by {seller} to {buyer}.\r\n"}, AGENT) == [CONTRACT_KEY]
    assert contracts.text("distance_sales", "en") == "Sold by {seller} to {buyer}."


def test_every_shipped_text_uses_only_known_placeholders(app):
    for key, body in contracts.all_texts().items():
        which = key.removeprefix("legal_").rsplit("_", 1)[0]
        assert body.strip() and contracts.unknown_placeholders(which, body) == [], key
        assert "lawyer" in body or "avukat" in body, key


def test_the_privacy_notice_names_the_seller_in_the_visitors_language(app):
    settings.update({"company_name": "Limon Destek A.Ş.", "notification_email": "kvkk@example.com"}, AGENT)
    assert "Veri sorumlusu: Limon Destek A.Ş." in contracts.privacy_notice("tr")
    assert "kvkk@example.com" in contracts.privacy_notice("en") and "PRIVACY NOTICE" in contracts.privacy_notice("en")


def test_the_purchase_mail_carries_the_texts_kept_with_the_order(package):
    customer = make_customer(language="en")
    balance.move(customer.id, "TRY", 100_00, "adjustment", reason="gift")
    contracts.update_texts({CONTRACT_KEY: "Contract {order_number} for {buyer}."}, AGENT)
    order = _place(customer, package, "account_balance", language="en")
    db.session.commit()
    mail = db.session.scalar(select(Notification).where(Notification.event == "purchase_activated",
                                                        Notification.recipient == customer.email))
    assert f"Contract {order.number} for {customer.display_name}." in mail.body_text
    assert order.contract.pre_information in mail.body_text
    assert f"Contract {order.number} for {customer.display_name}." in mail.body_html


def test_marketing_consent_is_recorded_and_withdrawn_with_its_times(app, clock):
    details = {"account_type": "individual", "first_name": "Ayşe", "last_name": "Yılmaz", "email": "ayse@example.com",
               "phone": "0532 123 45 67"}
    customer = customers.sign_up(details, "a-long-passphrase-7", marketing_consent=True, ip="198.51.100.4")
    db.session.commit()
    given_at = clock.now()
    assert consents.has_marketing_consent(customer)
    clock.advance(days=3)
    actor = audit.Actor.of(customer, "198.51.100.9")
    assert consents.set_marketing_consent(customer, False, actor) is True
    assert consents.set_marketing_consent(customer, False, actor) is False  # no change, no row
    db.session.commit()
    history = consents.marketing_history(customer)
    assert [(row.granted, row.changed_at, row.ip) for row in history] == [
        (False, given_at + timedelta(days=3), "198.51.100.9"), (True, given_at, "198.51.100.4")]
    assert not consents.has_marketing_consent(customer)


def test_a_registration_without_the_box_records_no_consent(app):
    customer = customers.sign_up({"account_type": "individual", "first_name": "Can", "last_name": "Demir",
                                  "email": "can@example.com", "phone": "0532 123 45 68"}, "a-long-passphrase-7")
    db.session.commit()
    assert not consents.has_marketing_consent(customer)
    assert db.session.scalar(select(MarketingConsent.id)) is None
    assert consents.set_marketing_consent(customer, False, AGENT) is False  # never chose: "no" already
