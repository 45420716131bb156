"""KVKK requests (services/privacy.py), on SQLite and PostgreSQL: the archive holds everything about the customer
and nothing of another, the map of tables stays complete, erasure leaves nothing personal outside the retained
invoice snapshots, one waiting request, money in flight refuses, the retention command."""
import io
import json
import zipfile

import pytest
from sqlalchemy import JSON, String, Text, func, select

from limonbilling.extensions import db
from limonbilling.models import (
    AuditEntry,
    Customer,
    CustomerNote,
    ErasureRequest,
    Invoice,
    Notification,
    Order,
    Payment,
    RateLimitCounter,
)
from limonbilling.services import (
    ServiceError,
    ValidationFailed,
    accounts,
    activation_requests,
    balance,
    card_payments,
    helpdesk,
    privacy,
    refunds,
    settings,
)
from limonbilling.services.attachments import Upload, folder

from ..factories import (
    PASSWORD,
    make_activation_request,
    make_corporate_customer,
    make_customer,
    make_department,
    make_package,
)
from ..payment_support import (
    AGENT,
    BANK,
    as_customer,
    bank_answer,
    card_order,
    configure_gateway,
    paid_by_card,
    refund_to_balance,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PERSONAL = {"first_name": "Zeynepkvkk", "last_name": "Aksoyoğlukvkk", "email": "zeynep.kvkk@example.com",
            "phone": "0555 987 65 43", "national_id": "10000000146", "company_name": "Gizlikvkk Bilişim Ltd.",
            "tax_number": "1234567890", "tax_office": "Üsküdarkvkk", "billing_address": "Gizli Sok. 7kvkk, İstanbul"}


def referring_tables() -> set[str]:
    """Every table with a customer_id column or a foreign key to customers (the customers table itself too)."""
    found = {"customers"}
    for table in db.metadata.tables.values():
        if "customer_id" in table.c or any(fk.column.table.name == "customers" for fk in table.foreign_keys):
            found.add(table.name)
    return found


def test_every_table_that_refers_to_a_customer_is_exported_and_has_an_erasure_rule(app):
    tables = referring_tables()
    assert set(privacy.EXPORTED) == tables, "add the new table to privacy.EXPORTED (and decide its ERASURE rule)"
    assert set(privacy.ERASURE) == tables, "decide what erasure does to the new table in privacy.ERASURE"
    children = {child for pairs in privacy.CHILDREN.values() for child, _ in pairs}
    assert children.isdisjoint(tables)  # reached through their parents, never twice


@pytest.fixture
def rich(app):
    """A corporate customer with a paid card order (invoice), a balance refund, a verification ticket with a
    file and an agent's reply, an e-mail change asked for, an activation request, an agent's note, failed
    sign-ins; and a second customer who must stay untouched."""
    settings.update({"notification_email": "team@example.com"}, AGENT)
    department = make_department("Support")
    package = make_package("credit", [department], credits=10, price="100.00")
    customer = make_corporate_customer(**PERSONAL)
    customer.national_id = PERSONAL["national_id"]  # a corporate sign-up keeps none; an agent may have added it
    other = make_customer(first_name="Mehmet", last_name="Başka", email="other@example.com")
    order = paid_by_card(customer, package)
    refund_to_balance(order, amount_minor=1000)
    balance.adjust(customer, "-10,00", "TRY", "Paid back by bank transfer", AGENT)  # nothing left to reach
    ticket = helpdesk.open_verification(customer, "My ID, Zeynepkvkk", "Here is my ID card, Zeynepkvkk Aksoyoğlukvkk",
                                        [Upload("kimlik-zeynepkvkk.png", PNG)])
    helpdesk.reply(ticket, make_agent_in_session(), "Thank you Zeynepkvkk, 0555 987 65 43 noted.")
    accounts.request_email_change(customer, "zeynep.new@example.com", PASSWORD, as_customer(customer))
    db.session.add(CustomerNote(customer_id=customer.id, body="Zeynepkvkk called from 0555 987 65 43"))
    db.session.commit()
    activation_requests.submit({"first_name": "Zeynepkvkk", "last_name": "Aksoyoğlukvkk", "email": PERSONAL["email"],
                                "phone": PERSONAL["phone"], "amount": "100,00", "currency": "TRY",
                                "paid_on": order.created_at.date(), "package_id": None,
                                "note": "from Zeynepkvkk's account"}, ip="192.0.2.9")
    db.session.commit()
    # Answered: a waiting request holds the erasure (the customer says money was sent)
    activation_requests.reject(activation_requests.pending_request(customer), "No transfer from Zeynepkvkk yet",
                               AGENT)
    db.session.add(RateLimitCounter(key=f"sign-in/attempts/192.0.2.9/{PERSONAL['email']}", count=2,
                                    expires_at=9e9))
    db.session.commit()
    return customer, other, order


def make_agent_in_session():
    from ..factories import make_agent
    return make_agent("support", name="Ali Destek")


def unzip(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_the_archive_holds_every_record_of_the_customer_and_no_secret(rich):
    customer, other, order = rich
    files = unzip(privacy.export_archive(customer, PASSWORD, as_customer(customer)))
    db.session.commit()

    assert set(files) == {"README.txt", "audit_log.json", *privacy.EXPORTED.values()}
    data = {name: json.loads(text) for name, text in files.items() if name.endswith(".json")}
    profile = data["profile.json"][0]
    assert profile["email"] == PERSONAL["email"] and profile["national_id"] == PERSONAL["national_id"]
    assert not {"password_hash", "totp_secret", "recovery_code_hashes"} & set(profile)
    [exported_order] = [o for o in data["orders.json"] if o["id"] == order.id]
    assert exported_order["payments"][0]["state"] == "confirmed"
    assert exported_order["refunds"][0]["amount_minor"] == 1000
    assert data["invoices.json"][0]["buyer"]["name"] == "Zeynepkvkk Aksoyoğlukvkk"
    assert data["credit_ledger.json"] and data["account_balance_entries.json"] and data["account_balances.json"]
    [ticket] = data["tickets_and_chats.json"]
    assert [m["body"] for m in ticket["messages"]][0].startswith("Here is my ID card")
    assert ticket["messages"][0]["attachments"][0]["original_name"].startswith("kimlik")
    assert {n["event"] for n in data["notifications.json"]} >= {"email_change", "email_change_notice"}
    assert data["activation_requests.json"][0]["note"] == "from Zeynepkvkk's account"
    assert data["agent_notes.json"][0]["body"].startswith("Zeynepkvkk called")
    assert {"customer.email_change_requested", "order.paid"} <= {e["action"] for e in data["audit_log.json"]}
    assert db.session.scalar(select(AuditEntry.target_id).where(AuditEntry.action == "customer.data_export")) == \
        str(customer.id)
    whole = "".join(files.values())
    assert "other@example.com" not in whole and "Mehmet" not in whole
    assert "zeynep.new@example.com" in whole  # the address change asked for is theirs
    sensitive = [n for n in data["notifications.json"] if n["sensitive"]]
    assert sensitive and all(n["body_text"] is None for n in sensitive)  # no sign-in link leaves in a file
    assert f"customer {customer.id}." in files["README.txt"]


def test_the_archive_needs_the_password(rich):
    customer, _other, _order = rich
    with pytest.raises(ValidationFailed) as refused:
        privacy.export_archive(customer, "wrong-password-1", as_customer(customer))
    assert "password" in refused.value.errors


def personal_leftovers(values: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value found) for every text or JSON column of every table that holds one of `values`."""
    found = []
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.c if isinstance(c.type, String | Text | JSON)]
        for column in columns:
            for value in db.session.scalars(select(column).where(column.is_not(None))):
                text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
                found += [(table.name, column.name, item) for item in values if item.lower() in text.lower()]
    return found


def test_erasure_leaves_nothing_personal_outside_the_retained_invoices_and_contracts(rich):
    customer, other, order = rich
    assert list(folder().iterdir())  # the identity document
    request = privacy.request_erasure(customer, "I am leaving", PASSWORD, as_customer(customer))
    db.session.commit()
    privacy.approve(request.id, AGENT)
    db.session.commit()

    values = [*PERSONAL.values(), "zeynep.new@example.com", "Zeynepkvkk Aksoyoğlukvkk"]
    leftovers = {(table, column) for table, column, _value in personal_leftovers(values)}
    # the invoices and the accepted contracts are kept for the retention period (tax law; distance-sale records)
    assert leftovers == {("invoices", "buyer"), ("order_contracts", "pre_information"),
                         ("order_contracts", "distance_sales")}
    erased = db.session.get(Customer, customer.id)
    assert erased.email == f"erased-{customer.id}@invalid" and erased.erased_at is not None
    assert not erased.is_active and not erased.two_factor_enabled and not erased.check_password(PASSWORD)
    assert accounts.authenticate_customer(f"erased-{customer.id}@invalid", PASSWORD) is None
    assert not list(folder().iterdir())  # the identity document is gone from disk
    # kept for accounting: the order, its payment and refund, the invoice, the ledger
    assert db.session.get(Order, order.id).payments[0].state == "confirmed"
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
    assert db.session.get(Customer, other.id).email == "other@example.com"
    assert db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.customer_id == customer.id, Notification.state.in_(("pending", "sending")))) == 0
    actions = [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-3:] == ["erasure.request", "erasure.approve", "customer.erase"]


def test_one_waiting_request_per_customer_and_reject_needs_a_note(rich):
    customer, _other, _order = rich
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    db.session.commit()
    with pytest.raises(ServiceError) as again:
        privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    assert again.value.code == "already_requested"
    db.session.rollback()
    with pytest.raises(ValidationFailed):
        privacy.reject(request.id, " ", AGENT)
    db.session.rollback()
    privacy.reject(request.id, "Your invoices are still open.", AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as twice:
        privacy.approve(request.id, AGENT)
    assert twice.value.code == "already_decided"
    db.session.rollback()
    assert db.session.get(Customer, customer.id).erased_at is None
    assert privacy.latest_request(customer).decision_note == "Your invoices are still open."
    assert privacy.request_erasure(customer, "again", PASSWORD, as_customer(customer)).state == "pending"


def test_the_password_is_needed_to_ask(rich):
    customer, _other, _order = rich
    with pytest.raises(ValidationFailed) as refused:
        privacy.request_erasure(customer, "", "not-my-password-1", as_customer(customer))
    assert "password" in refused.value.errors


def test_money_in_flight_refuses_the_request_and_the_approval(app):
    package = make_package("credit", price="100.00")
    customer = make_customer()
    order, attempt = card_order(customer, package)  # sent to the bank, no answer yet
    with pytest.raises(ServiceError) as refused:
        privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    assert refused.value.code == "money_in_flight"
    db.session.rollback()

    other = make_customer()
    paid = paid_by_card(other, package)
    request = privacy.request_erasure(other, "", PASSWORD, as_customer(other))
    db.session.commit()
    refunds.start(paid, to="card", actor=AGENT)  # recorded, not yet answered by the bank
    db.session.commit()
    with pytest.raises(ServiceError) as waiting:
        privacy.approve(request.id, AGENT)
    assert waiting.value.code == "money_in_flight"
    db.session.rollback()
    assert db.session.get(ErasureRequest, request.id).state == "pending"
    assert db.session.get(Customer, other.id).erased_at is None
    assert db.session.get(Payment, attempt.id).state == "pending"


def test_a_declined_attempt_still_asked_about_holds_the_erasure_for_its_day(app, clock):
    """Attack pass 12: a declined card attempt (or one the bank had no sale for) may still be paid on the bank's
    3-D page with the same oid, its post-back lost; reconciliation asks about it for a day and takes what it
    finds. An erasure in that day let 150.00 be taken and the package activated for an account that signs in no
    more. The erasure waits for that day, as for an attempt not answered yet."""
    gateway = configure_gateway()
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", price="150.00"))
    card_payments.apply_card_callback(gateway, bank_answer(attempt, approved=False), BANK)
    db.session.commit()
    assert attempt.state == "failed" and attempt.rechecked
    with pytest.raises(ServiceError) as refused:
        privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    assert refused.value.code == "money_in_flight"
    db.session.rollback()
    clock.advance(days=1)
    assert not db.session.get(Payment, attempt.id).rechecked
    privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))


def test_a_waiting_activation_request_holds_the_erasure_until_an_agent_answers_it(app):
    """The customer says a transfer was sent (the activation form): the money may be at the seller's bank. An
    erasure approved meanwhile left the request waiting, and an agent could approve it afterwards: an order paid
    and activated for an account that signs in no more (attack pass 7). The erasure waits for the answer."""

    from limonbilling.services import activation_requests

    customer = make_customer()
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    db.session.commit()
    make_activation_request(customer, "150,00")
    with pytest.raises(ServiceError) as waiting:
        privacy.approve(request.id, AGENT)
    assert waiting.value.code == "activation_waiting"
    db.session.rollback()
    assert db.session.get(Customer, customer.id).erased_at is None
    activation = activation_requests.pending_request(customer)
    activation_requests.reject(activation, "No transfer arrived", AGENT)
    privacy.approve(request.id, AGENT)
    db.session.commit()
    assert db.session.get(Customer, customer.id).erased_at is not None


def test_money_in_the_account_balance_refuses_the_request_and_the_approval(app):
    """Found by the attack pass: erasure left the balance's money with an account that signs in no more, so
    nobody could ask for it; and an agent could still refund an erased customer's order to that balance."""
    package = make_package("credit", price="100.00")
    customer = make_customer()
    order = paid_by_card(customer, package)
    refund_to_balance(order, amount_minor=2500)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    assert refused.value.code == "balance_held" and "25.00" in refused.value.message
    db.session.rollback()

    balance.adjust(customer, "-25,00", "TRY", "Paid back by bank transfer", AGENT)
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    db.session.commit()
    balance.adjust(customer, "5,00", "USD", "Goodwill", AGENT)  # money came in while the request waited
    db.session.commit()
    with pytest.raises(ServiceError) as waiting:
        privacy.approve(request.id, AGENT)
    assert waiting.value.code == "balance_held"
    db.session.rollback()
    assert db.session.get(Customer, customer.id).erased_at is None

    balance.adjust(customer, "-5,00", "USD", "Paid back", AGENT)
    privacy.approve(request.id, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as erased:
        refund_to_balance(order)  # the rest of the order's money: never into a balance nobody can reach
    assert erased.value.code == "customer_erased"
    db.session.rollback()
    assert balance.amount_by_id(customer.id, "TRY") == 0 and order.refundable_minor == 7500


def test_the_retention_command_blanks_only_old_invoices_of_erased_customers(rich, clock):
    customer, other, order = rich
    package = make_package("credit", price="50.00")
    kept = paid_by_card(other, package)
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    db.session.commit()
    privacy.approve(request.id, AGENT)
    db.session.commit()

    clock.advance(days=365 * 10 - 5)
    assert privacy.anonymise_expired_invoices(AGENT) == 0
    clock.advance(days=10)
    assert privacy.anonymise_expired_invoices(AGENT) == 1
    db.session.commit()
    assert privacy.anonymise_expired_invoices(AGENT) == 0
    assert personal_leftovers(list(PERSONAL.values())) == []
    assert db.session.get(Invoice, kept.invoice.id).buyer["email"] == "other@example.com"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "invoice.buyers_anonymised"))
    assert entry.details["count"] == 1


def test_nothing_is_mailed_to_an_erased_customer(app):
    from limonbilling.services import notifications

    customer = make_customer()
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    db.session.commit()
    privacy.approve(request.id, AGENT)
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(Notification))  # the welcome mail, erased
    notifications.email_verification(db.session.get(Customer, customer.id))
    assert db.session.scalar(select(func.count()).select_from(Notification)) == before


def test_an_erased_customer_makes_no_cancellation_request(app):
    """A cancellation form sent from a page loaded before the erasure committed (the customer's lock waits for
    it) recorded the customer's words after they were erased, for an account that signs in no more."""
    from limonbilling.services import cancellations, placement

    from ..factories import make_package

    customer = make_customer()
    placement.place_agent_order(customer, make_package("subscription", days=30), payment_method="manual",
                                actor=AGENT)
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    privacy.approve(request.id, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        cancellations.request_cancellation(customer, timing="now", reason="Moving to Ayşe Yılmaz's company",
                                           actor=as_customer(customer))
    assert refused.value.code == "customer_erased"
