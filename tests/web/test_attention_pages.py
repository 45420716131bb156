"""An order flagged "needs attention" can be marked settled by an agent, with a note the audit log keeps; and
the refund page an agent settles money with.

Before, a flag on an Active order (money the bank would not return, a half 3-D payment heard of late) could
only go away by a refund made through the system: an agent who kept the money had no way to say so.
"""
from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Order

from ..factories import make_agent, make_customer, make_package, sign_in
from ..payment_support import paid_by_card

FLAG = "The bank refused the Void."


def flagged_order() -> Order:
    order = paid_by_card(make_customer(), make_package("credit", credits=5))
    order.attention = FLAG
    db.session.commit()
    return order


def test_an_agent_marks_the_flag_settled_with_a_note(app, billing_client):
    order = flagged_order()
    page = billing_client.get(f"/admin/billing/orders/{order.number}").data.decode()
    assert FLAG in page and "Mark as settled" in page
    assert f'title="{FLAG}">needs attention' in billing_client.get("/admin/billing/orders").data.decode()
    response = billing_client.post(f"/admin/billing/orders/{order.number}/attention",
                                   data={"note": "Refunded in the bank's panel, ref 991"})
    assert response.status_code == 302
    db.session.expire_all()
    assert order.attention is None
    entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "order.attention_settled")).one()
    assert entry.details["note"] == "Refunded in the bank's panel, ref 991" and entry.details["flagged"] == FLAG
    assert f'title="{FLAG}">needs attention' not in billing_client.get("/admin/billing/orders").data.decode()


def test_a_note_is_required_and_nothing_changes_without_it(app, billing_client):
    order = flagged_order()
    shown = billing_client.post(f"/admin/billing/orders/{order.number}/attention", data={"note": "  "},
                                follow_redirects=True).data.decode()
    assert "Say how it was settled" in shown
    db.session.expire_all()
    assert order.attention == FLAG


def test_an_order_without_a_flag_refuses(app, billing_client):
    order = paid_by_card(make_customer(), make_package("credit", credits=5))
    shown = billing_client.post(f"/admin/billing/orders/{order.number}/attention", data={"note": "x"},
                                follow_redirects=True).data.decode()
    assert "Nothing on this order needs attention any more." in shown


def test_only_agents_with_billing_settle_flags(app):
    order = flagged_order()
    client = app.test_client()
    sign_in(client, make_agent("customers"))
    assert client.post(f"/admin/billing/orders/{order.number}/attention", data={"note": "x"}).status_code == 403
    db.session.expire_all()
    assert order.attention == FLAG


def test_the_refund_page_offers_a_part_and_names_a_wrong_amount_beside_its_field(app, billing_client):
    """The page never showed the amount field: only all of an order could be refunded from it."""
    order = paid_by_card(make_customer(), make_package("credit", credits=5, price="150.00"))
    page = billing_client.get(f"/admin/billing/orders/{order.number}/refund").data.decode()
    assert 'name="amount"' in page and "Up to TRY\xa0150.00 can be refunded." in page
    wrong = billing_client.post(f"/admin/billing/orders/{order.number}/refund", data={"to": "balance", "amount": "abc"})
    assert wrong.status_code == 200 and 'id="amount"' in wrong.data.decode()
    assert "is-invalid" in wrong.data.decode().split('id="amount"')[0].rsplit("<input", 1)[1]
    part = billing_client.post(f"/admin/billing/orders/{order.number}/refund", data={"to": "balance", "amount": "50"})
    assert part.status_code == 302
    db.session.expire_all()
    assert [refund.amount_minor for refund in order.refunds] == [5000] and order.status != "cancelled"
