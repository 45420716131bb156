"""Files with tickets and chats, the free Account verification channel, and the identity rule at checkout
(issue 17, DT identity verification). On SQLite and PostgreSQL; the race at the end on PostgreSQL only."""
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from limonbilling.extensions import db
from limonbilling.models import (
    Attachment,
    AttachmentKind,
    AuditEntry,
    Conversation,
    Customer,
    LedgerEntry,
    Order,
    Payment,
    Usage,
)
from limonbilling.services import ServiceError, ValidationFailed, attachments, audit, helpdesk, placement, settings
from limonbilling.services.attachments import MEGABYTE, Upload

from ..factories import (
    make_agent,
    make_corporate_customer,
    make_customer,
    make_department,
    make_package,
    make_transfer_account,
)

AGENT = audit.Actor("agent", None, "agent@example.com")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 16
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def _file(size: int, head: bytes = PNG) -> bytes:
    """A PNG (by its first bytes) of exactly `size` bytes."""
    return head + b"\x00" * (size - len(head))


# --- what a file is --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, kind", [(PNG, AttachmentKind.PNG), (JPEG, AttachmentKind.JPEG),
                                        (WEBP, AttachmentKind.WEBP), (PDF, AttachmentKind.PDF)])
def test_a_file_is_what_its_content_says(data, kind):
    assert attachments.sniff(data) is kind


@pytest.mark.parametrize("data", [
    b"<!DOCTYPE html><html><script>alert(1)</script></html>",  # HTML called photo.png
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',  # SVG
    b"<svg onload=alert(1)>", b"GIF89a\x01\x00", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"RIFF", b"",
    b"PK\x03\x04 a zip", b" %PDF-1.7",  # the signature must be at the very start
])
def test_anything_else_is_not_an_image_or_a_pdf(data):
    assert attachments.sniff(data) is None


@pytest.mark.parametrize("name, kind, cleaned", [
    ("kimlik.png", AttachmentKind.PNG, "kimlik.png"),
    ("../../etc/passwd", AttachmentKind.PNG, "passwd.png"),
    ("C:\\Users\\ayşe\\Kimlik Ön Yüz.JPG", AttachmentKind.JPEG, "Kimlik Ön Yüz.JPG"),
    ('a"b;c\r\n<d>.pdf', AttachmentKind.PDF, "a_b_c_d_.pdf"),
    ("photo.png", AttachmentKind.PDF, "photo.png.pdf"),  # the name never decides what a file opens as
    ("page.html", AttachmentKind.PNG, "page.html.png"),
    ("...", AttachmentKind.WEBP, "attachment.webp"),
    ("", AttachmentKind.PNG, "attachment.png"),
])
def test_the_senders_name_is_kept_only_as_a_clean_label(name, kind, cleaned):
    assert attachments.clean_name(name, kind) == cleaned


def test_a_long_name_is_cut_to_120_characters_keeping_its_extension():
    cleaned = attachments.clean_name("x" * 500 + ".pdf", AttachmentKind.PDF)
    assert len(cleaned) == attachments.MAX_NAME_LENGTH == 120 and cleaned.endswith("x.pdf")


# --- limits (settings, defaults 5 MB and 3 files) ----------------------------------------------------------

def test_a_file_of_exactly_the_limit_passes_and_one_byte_more_is_refused(app):
    assert settings.get("attachment_max_mb") == 5 and attachments.max_bytes() == 5 * MEGABYTE
    assert attachments.check([Upload("id.png", _file(5 * MEGABYTE))])
    with pytest.raises(ValidationFailed) as refused:
        attachments.check([Upload("id.png", _file(5 * MEGABYTE + 1))])
    assert refused.value.errors == {"attachments": ["id.png is larger than 5 MB."]}


def test_the_count_limit_passes_at_three_and_refuses_four(app):
    assert attachments.max_count() == 3
    assert len(attachments.check([Upload(f"{n}.png", PNG) for n in range(3)])) == 3
    with pytest.raises(ValidationFailed) as refused:
        attachments.check([Upload(f"{n}.png", PNG) for n in range(4)])
    assert refused.value.errors == {"attachments": ["Attach at most 3 files to a message."]}


def test_the_limits_follow_the_settings(app):
    settings.update({"attachment_max_mb": 1, "attachment_max_count": 1}, AGENT)
    assert attachments.check([Upload("a.png", _file(MEGABYTE))])
    with pytest.raises(ValidationFailed):
        attachments.check([Upload("a.png", _file(MEGABYTE + 1))])
    with pytest.raises(ValidationFailed) as refused:
        attachments.check([Upload("a.png", PNG), Upload("b.png", PNG)])
    assert refused.value.errors["attachments"] == ["Attach at most 1 file to a message."]
    assert attachments.request_limit() == 2 * MEGABYTE + MEGABYTE


@pytest.mark.parametrize("values", [{"attachment_max_mb": 0}, {"attachment_max_mb": 21},
                                    {"attachment_max_count": 0}, {"attachment_max_count": 11}])
def test_limits_outside_their_bounds_are_refused(app, values):
    with pytest.raises(ValidationFailed):
        settings.update(values, AGENT)


def test_a_disguised_file_is_refused_by_name_with_the_reason(app):
    with pytest.raises(ValidationFailed) as refused:
        attachments.check([Upload("photo.png", b"<html><script>alert(1)</script></html>"), Upload("ok.png", PNG)])
    assert refused.value.errors == {"attachments": ["photo.png is not a PNG, JPEG or WebP image or a PDF document."]}


# --- storing and who may read ------------------------------------------------------------------------------

def _ticket_with(customer, *uploads):
    conversation = helpdesk.open_verification(customer, "My ID", "Here it is.", list(uploads))
    db.session.commit()
    return conversation


def test_files_are_stored_under_random_names_outside_static_with_their_kind(app, tmp_path):
    customer = make_customer()
    conversation = _ticket_with(customer, Upload("../kimlik.png", PNG), Upload("pasaport.pdf", PDF))
    first, second = conversation.messages[0].attachments
    assert (first.kind, first.original_name, first.size_bytes) == ("png", "kimlik.png", len(PNG))
    assert (second.kind, second.content_type, second.is_image) == ("pdf", "application/pdf", False)
    assert first.content_type == "image/png" and first.is_image
    folder = tmp_path / "attachments"
    assert sorted(os.listdir(folder)) == sorted([first.stored_name, second.stored_name])
    assert len(first.stored_name) == 32 and "kimlik" not in first.stored_name
    assert attachments.path_of(first).read_bytes() == PNG
    assert stat.S_IMODE(attachments.path_of(first).stat().st_mode) == 0o600
    assert "static" not in str(folder.relative_to(tmp_path))


def test_a_refused_message_leaves_no_file_behind(app, tmp_path):
    customer = make_customer()
    conversation = _ticket_with(customer)
    with pytest.raises(ValidationFailed):
        helpdesk.reply(conversation, customer, "two", [Upload("a.png", PNG), Upload("b.html", b"<html>")])
    db.session.rollback()
    helpdesk.reply(conversation, customer, "kept back", [Upload("a.png", PNG)])  # written, then rolled back
    assert len(os.listdir(tmp_path / "attachments")) == 1
    db.session.rollback()
    assert os.listdir(tmp_path / "attachments") == []
    assert db.session.scalar(select(func.count(Attachment.id))) == 0


def test_a_reply_may_be_only_files_but_not_empty(app):
    customer = make_customer()
    conversation = _ticket_with(customer)
    assert helpdesk.reply(conversation, customer, "", [Upload("back.jpg", JPEG)]).attachments[0].kind == "jpeg"
    with pytest.raises(ValidationFailed):
        helpdesk.reply(conversation, customer, "  ", [])


def test_only_the_customer_and_agents_with_support_reach_a_file(app):
    owner, other = make_customer(), make_customer()
    file = _ticket_with(owner, Upload("id.png", PNG)).messages[0].attachments[0]
    assert attachments.for_customer(owner, file.id) is file
    assert attachments.for_customer(other, file.id) is None
    assert attachments.for_customer(owner, file.id + 1) is None
    assert attachments.for_agent(make_agent("support"), file.id) is file
    assert attachments.for_agent(make_agent(is_owner=True), file.id) is file
    for permissions in [(), ("billing", "customers", "settings")]:
        assert attachments.for_agent(make_agent(*permissions), file.id) is None


def test_chats_and_department_tickets_take_files_too(app):
    department = make_department(credit_per_request=0)
    customer = make_customer()
    settings.update({"vip_support_enabled": False}, AGENT)
    chat = helpdesk.open_conversation(customer, department, "chat", "", "Hi", [Upload("error.webp", WEBP)])
    assert chat.messages[0].attachments[0].kind == "webp"
    reply = helpdesk.reply(chat, make_agent("support"), "See this", [Upload("fix.pdf", PDF)])
    assert reply.attachments[0].original_name == "fix.pdf"


# --- the Account verification channel ---------------------------------------------------------------------

@pytest.mark.parametrize("vip_support_enabled", [True, False])
def test_verification_is_open_and_free_with_no_department_credit_or_subscription(app, vip_support_enabled):
    settings.update({"vip_support_enabled": vip_support_enabled}, AGENT)
    make_department("Support", credit_per_request=5)  # a department exists, none is enabled for the customer
    customer = make_customer()
    conversation = _ticket_with(customer, Upload("id.png", PNG))
    assert (conversation.kind, conversation.channel, conversation.department_id) == ("ticket", "verification", None)
    assert conversation.usage_id is None and conversation.credits_spent == 0
    assert conversation.place_name == "Account verification"
    helpdesk.reply(conversation, customer, "and the back side", [Upload("back.png", PNG)])
    db.session.commit()
    db.session.refresh(customer)
    assert customer.credits == 0
    assert db.session.scalar(select(func.count(Usage.id))) == 0
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "verification.open")) == 1


def test_the_database_keeps_verification_tickets_free_and_without_department(app):
    department = make_department()
    customer = make_customer()
    db.session.add(Conversation(kind="ticket", channel="verification", department_id=department.id,
                                customer_id=customer.id, subject="x"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    db.session.add(Conversation(kind="chat", channel="verification", customer_id=customer.id, subject="x"))
    with pytest.raises(IntegrityError):
        db.session.flush()


def test_an_agent_marks_the_identity_verified_once_from_the_verification_ticket(app):
    customer = make_customer()
    conversation = _ticket_with(customer)
    agent = audit.Actor.of(make_agent("support"))
    assert helpdesk.verify_identity(conversation, agent) is True
    db.session.commit()
    assert helpdesk.verify_identity(conversation, agent) is False
    db.session.commit()
    customer = db.session.get(Customer, customer.id)
    assert customer.identity_verified and customer.identity_verified_at is not None
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.identity_verified")).all()
    assert len(entries) == 1
    assert entries[0].target_id == str(customer.id)
    assert entries[0].details == {"verified": True, "conversation_id": conversation.id}


def test_a_department_ticket_cannot_verify_an_identity(app):
    settings.update({"vip_support_enabled": False}, AGENT)
    customer = make_customer()
    ticket = helpdesk.open_conversation(customer, make_department(), "ticket", "Help", "Please")
    with pytest.raises(ServiceError) as refused:
        helpdesk.verify_identity(ticket, AGENT)
    assert refused.value.code == "not_verification"
    assert not customer.identity_verified


# --- "identity verification required" never blocks customers who already bought --------------------------

@pytest.fixture
def subscription(app):
    return make_package("subscription", [make_department()], days=30)


def test_a_customer_who_bought_before_renews_unverified(app, subscription):
    customer = make_customer()
    placement.place_agent_order(customer, subscription, payment_method="manual", actor=AGENT)
    db.session.commit()
    settings.update({"require_identity_verification": True}, AGENT)
    assert not customer.identity_verified and placement.has_bought(customer)
    assert placement.checkout_refusal(customer) is None
    make_transfer_account()
    order = placement.place_customer_order(customer, subscription, payment_method="bank_transfer",
                                           actor=audit.Actor.of(customer), contracts_accepted=True)
    assert order.kind == "renewal"


def test_a_brand_new_customer_is_sent_to_the_verification_channel(app, subscription):
    settings.update({"require_identity_verification": True}, AGENT)
    customer = make_customer()
    refusal = placement.checkout_refusal(customer)
    assert "Account verification" in refusal
    with pytest.raises(ServiceError) as refused:
        make_transfer_account()
        placement.place_customer_order(customer, subscription, payment_method="bank_transfer",
                                       actor=audit.Actor.of(customer), contracts_accepted=True)
    assert refused.value.code == "identity_not_verified" and refused.value.message == refusal
    db.session.rollback()
    assert db.session.scalar(select(func.count(Order.id))) == 0


def test_an_order_never_paid_does_not_count_as_having_bought(app, subscription):
    """The edge of "already bought": an order waiting for its transfer is not a purchase; the agent's
    acceptance of the money is."""
    customer = make_customer()
    make_transfer_account()
    order = placement.place_customer_order(customer, subscription, payment_method="bank_transfer",
                                           actor=audit.Actor.of(customer), contracts_accepted=True)
    db.session.commit()
    settings.update({"require_identity_verification": True}, AGENT)
    assert not placement.has_bought(customer) and placement.checkout_refusal(customer)
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.order_id == order.id)) == 0


def test_verified_individuals_and_corporate_customers_are_not_refused(app):
    settings.update({"require_identity_verification": True}, AGENT)
    person = make_customer()
    assert placement.checkout_refusal(person)
    helpdesk.verify_identity(_ticket_with(person), AGENT)
    assert placement.checkout_refusal(person) is None
    assert placement.checkout_refusal(make_corporate_customer()) is None


# --- two agents pressing "Mark identity verified" at once -----------------------------------------------------

THREADS = 16


@pytest.fixture
def worker(make_app, database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite serialises writers and would hide this race; it runs on PostgreSQL only")
    other = make_app(SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "pool_size": THREADS + 4, "max_overflow": 0,
        "connect_args": {"options": "-c lock_timeout=20000"},
    })
    yield other
    with other.app_context():
        db.engine.dispose()


def test_marking_verified_from_many_callers_at_once_records_one_change(app, worker):
    customer = make_customer()
    customer_id, conversation_id = customer.id, _ticket_with(customer).id
    agents = [audit.Actor.of(make_agent("support")) for _ in range(THREADS)]
    db.session.close()
    barrier = threading.Barrier(THREADS)

    def mark(actor):
        with worker.app_context():
            conversation = db.session.get(Conversation, conversation_id)
            assert not conversation.customer.identity_verified  # every caller saw "not yet" before the others
            barrier.wait()
            try:
                changed = helpdesk.verify_identity(conversation, actor)
                db.session.commit()
                return changed
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(mark, agents))
    assert outcomes.count(True) == 1 and outcomes.count(False) == THREADS - 1
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "customer.identity_verified")) == 1
    assert db.session.get(Customer, customer_id).identity_verified
