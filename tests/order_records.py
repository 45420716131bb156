"""Orders and payments written as rows, without the order services: for tests about what is shown and who is
told, which must not depend on how an order got where it is."""
import itertools
import secrets

from limonbilling.clock import now
from limonbilling.extensions import db
from limonbilling.models import Order, Payment

_oids = itertools.count(1)


def make_order(customer, package, **overrides) -> Order:
    """A customer's own order of the package, pending and unpaid by card unless told otherwise; committed."""
    values = {
        "number": str(secrets.randbelow(9 * 10 ** 9) + 10 ** 9), "customer_id": customer.id, "created_at": now(),
        "kind": "new", "package_id": package.id, "package_snapshot": package.snapshot(),
        "amount_minor": package.price_minor, "currency": package.currency, "payment_method": "card",
        "payment_status": "unpaid", "status": "pending", "ip": "203.0.113.7",
    }
    values.update(overrides)
    order = Order(**values)
    db.session.add(order)
    db.session.commit()
    return order


def add_card_payment(order: Order, state: str, **overrides) -> Payment:
    """A card attempt of the order in the given state ("failed", "confirmed", …), at the clock's time; committed."""
    moment = now()
    values = {
        "order_id": order.id, "method": "card", "gateway": "nestpay", "oid": f"T{order.number}-{next(_oids)}",
        "state": state, "amount_minor": order.amount_minor, "currency": order.currency, "created_at": moment,
        "updated_at": moment, "confirmed_at": moment if state == "confirmed" else None,
    }
    values.update(overrides)
    payment = Payment(**values)
    db.session.add(payment)
    db.session.commit()
    db.session.refresh(order)
    return payment


def add_invoice(order: Order, status: str = "unpaid"):
    """The order's invoice (as checkout makes it) in the given status; committed."""
    from limonbilling.services import invoices

    invoice = invoices.create_for_order(order)
    invoice.status = status
    db.session.commit()
    return invoice


def grant_from(order: Order):
    """Activate the order's package for its customer, as paying it does, with the grant tied to the order."""
    from limonbilling.services import audit, entitlements

    grant = entitlements.activate_package(order.customer, order.package, source=f"order {order.number}",
                                          actor=audit.Actor.system("test"), for_order=order)
    grant.order_id = order.id
    db.session.commit()
    return grant
