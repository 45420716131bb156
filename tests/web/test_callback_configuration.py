"""The bank's callback address when card payments are not (or no longer) switched on.

Anyone may post to it: with NestPay never set up it answered 500 ("gate_url must be an http(s) URL"). Once set
up and then switched off, a customer may still be on the bank's 3-D page: the bank's signed answer must count.
"""
from limonbilling.extensions import db
from limonbilling.models import Order
from limonbilling.services import settings

from ..factories import make_customer, make_package
from ..payment_support import AGENT, bank_answer, card_order


def test_a_post_to_the_callback_of_a_shop_without_card_payments_is_not_found(client):
    for outcome in ("ok", "fail"):
        response = client.post(f"/payments/nestpay/{outcome}", data={"oid": "x", "HASH": "y"})
        assert response.status_code == 404


def test_an_approval_arriving_after_card_payments_were_switched_off_still_counts(client, gateway):
    order, attempt = card_order(make_customer(), make_package("credit", credits=5))
    settings.update({"nestpay_enabled": False}, AGENT)
    db.session.commit()
    response = client.post("/payments/nestpay/ok", data=bank_answer(attempt))
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Order, order.id).payment_status == "paid"
