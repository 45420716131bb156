"""Shared by the order tests: the gateway set up for the published test merchant, and bank answers."""

from limonbilling.extensions import db
from limonbilling.models import RefundDestination
from limonbilling.payments import nestpay
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.sandbox import TEST_MERCHANT
from limonbilling.services import audit, card_payments, placement, refunds, settings

AGENT = audit.Actor("agent", None, "agent@example.com")
BANK = audit.Actor("system", None, "nestpay")


def offer_instalments(*plans: tuple[int, int, int]) -> None:
    """Instalments on, with (count, minimum in minor units, surcharge in basis points) offered."""
    settings.update({"card_instalments_enabled": True, "card_instalment_plans": [
        {"count": count, "minimum_minor": minimum, "surcharge_basis_points": points}
        for count, minimum, points in plans]}, AGENT)


def configure_gateway(bank_url: str = "http://127.0.0.1:9") -> NestPayGateway:
    """NestPay with the published test merchant, at `bank_url` (the simulator's; by default an address that
    leads nowhere)."""
    settings.update({
        "nestpay_enabled": True, "nestpay_gate_url": f"{bank_url}/fim/est3Dgate",
        "nestpay_api_url": f"{bank_url}/fim/api", "nestpay_client_id": TEST_MERCHANT["client_id"],
        "nestpay_store_key": TEST_MERCHANT["store_key"], "nestpay_api_user": TEST_MERCHANT["api_user"],
        "nestpay_api_password": TEST_MERCHANT["api_password"],
    }, AGENT)
    return NestPayGateway()


def bank_answer(attempt, *, approved=True, **changes) -> dict:
    """The callback the bank would send for the attempt, signed with the store key."""
    fields = {
        "clientid": TEST_MERCHANT["client_id"], "oid": attempt.oid, "ReturnOid": attempt.oid,
        "amount": nestpay.format_amount(attempt.amount_minor), "currency": nestpay.CURRENCY_CODES[attempt.currency],
        "mdStatus": "1", "Response": "Approved" if approved else "Declined",
        "ProcReturnCode": "00" if approved else "05", "ErrMsg": "" if approved else "Do not honour",
        "MaskedPan": "435508***4358", "TransId": "T1", "AuthCode": "123456", "HostRefNum": "H1",
        "hashAlgorithm": "ver3", "rnd": "r",
        **({"Instalment": str(attempt.instalments)} if attempt.instalments > 1 else {}), **changes,
    }
    fields["HASH"] = nestpay.hash_v3(fields, TEST_MERCHANT["store_key"])
    return fields


def as_customer(customer) -> audit.Actor:
    return audit.Actor.of(customer, "127.0.0.1")


def card_order(customer, package, instalment_count: int = 1):
    order = placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                           ip="127.0.0.1", instalment_count=instalment_count,
                                           contracts_accepted=True)
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    return order, attempt


def paid_by_card(customer, package):
    """An order of the package paid by an approved (signed) bank callback, committed."""
    gateway = configure_gateway()
    order, attempt = card_order(customer, package)
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return order


def refund_to_card(order, gateway, actor=AGENT, amount_minor=None) -> str:
    """Cancel & Refund to the card as the order page does it: recorded and committed, then sent to the bank."""
    refunds.start(order, to=RefundDestination.CARD, actor=actor, amount_minor=amount_minor)
    db.session.commit()
    return refunds.send(order, gateway, actor)


def refund_to_balance(order, actor=AGENT, amount_minor=None):
    return refunds.start(order, to=RefundDestination.BALANCE, actor=actor, amount_minor=amount_minor)


def approved_at_the_simulator(attempt) -> dict:
    """Pay the attempt on the NestPay simulator's 3-D page (it must be the configured gateway) and return the
    signed post-back it answers with, which nobody has posted to us yet: the sale is on the bank's books."""
    import requests

    from limonbilling.sandbox import TEST_CARD

    from .http.servers import form_with_field, forms_of

    url, fields = NestPayGateway().payment_form(
        reference=attempt.oid, amount_minor=attempt.amount_minor, currency=attempt.currency,
        ok_url="http://127.0.0.1:9/ok", fail_url="http://127.0.0.1:9/fail", lang="tr",
        card=nestpay.Card(TEST_CARD, 12, 30, "000", "visa"), email=None, name=None)
    browser = requests.Session()
    choice = forms_of(browser.post(url, data=fields))[0]
    return form_with_field(browser.post(choice["action"], data={**choice["fields"], "outcome": "approve"}),
                           "HASH")["fields"]
