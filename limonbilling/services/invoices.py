"""Invoices (domain.md §7): one per order, VAT from the settings, gap-free numbers per year.

An invoice is made Unpaid with its order and gets its number when it is
issued (paid). The number comes from a per-year counter row made or incremented
with INSERT … ON CONFLICT DO UPDATE … RETURNING inside the paying transaction: a
rolled-back payment rolls its number back too, so numbers have no gaps even under
concurrent issuing. Every paying transaction writes that one row, so the number is
taken as the transaction commits (`_number_issued_invoices`), not when the money is
settled: the row stays locked for the commit only, not for the activation and the
e-mails that follow the payment, and concurrent payments do not queue behind it.
"""
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..clock import local_day, now
from ..extensions import db
from ..models import Customer, Invoice, InvoiceCounter, Order
from . import settings


def vat_totals(amount_minor: int, rate_percent: int, inclusive: bool) -> tuple[int, int, int]:
    """(net, VAT, total) in minor units; VAT rounded half up to the kuruş."""
    rate = Decimal(rate_percent) / 100
    if inclusive:
        net = int((Decimal(amount_minor) / (1 + rate)).quantize(Decimal(1), ROUND_HALF_UP))
        return net, amount_minor - net, amount_minor
    vat = int((Decimal(amount_minor) * rate).quantize(Decimal(1), ROUND_HALF_UP))
    return amount_minor, vat, amount_minor + vat


def vat_included(amount_minor: int, rate_percent: int) -> int:
    """The VAT inside an amount that includes it (an instalment surcharge): rounded half up to the kuruş."""
    return vat_totals(amount_minor, rate_percent, True)[1]


def order_totals(price_minor: int) -> tuple[int, int, int]:
    """(VAT rate, VAT, what the customer pays) for a price, with the VAT settings of now."""
    rate = settings.get("vat_rate_percent")
    _net, vat, total = vat_totals(price_minor, rate, settings.get("vat_inclusive"))
    return rate, vat, total


def _seller() -> dict:
    values = settings.get_all()
    return {
        "name": values["company_name"], "address": values["seller_address"],
        "tax_office": values["seller_tax_office"], "tax_number": values["seller_tax_number"],
    }


def _buyer(customer: Customer) -> dict:
    buyer = {"account_type": customer.account_type, "name": customer.full_name, "email": customer.email,
             "phone": customer.phone}
    if customer.account_type == "corporate":
        buyer.update(company_name=customer.company_name, tax_number=customer.tax_number,
                     tax_office=customer.tax_office, address=customer.billing_address)
    elif customer.national_id:
        buyer["national_id"] = customer.national_id
    return buyer


def create_for_order(order: Order) -> Invoice:
    """The order's invoice, Unpaid, with seller and buyer as they are now and the order's VAT."""
    total, vat = order.amount_minor, order.vat_minor
    net = total - vat
    invoice = Invoice(
        order=order, customer_id=order.customer_id, status="unpaid", created_at=now(),
        seller=_seller(), buyer=_buyer(db.session.get(Customer, order.customer_id)),
        lines=_lines(order, net),
        currency=order.currency, vat_rate_percent=order.vat_rate_percent,
        vat_inclusive=settings.get("vat_inclusive"),
        net_minor=net, vat_minor=vat, total_minor=total, instalments=order.instalments,
    )
    db.session.add(invoice)
    return invoice


def _lines(order: Order, net: int) -> list[dict]:
    """The package at its net price (n × the package on one line: "n × name", quantity n, the line's total),
    a promo code's discount as a negative line of its own, and an instalment surcharge as a line of its own
    (VAT included in it, as in the price: instalments.py)."""
    name, quantity = order.item_label, order.quantity
    surcharge_net = order.surcharge_minor - vat_included(order.surcharge_minor, order.vat_rate_percent)
    goods_net = net - surcharge_net
    surcharge = [{"description": _("Instalment surcharge (%(count)d instalments)", count=order.instalments),
                  "quantity": 1, "net_minor": surcharge_net}] if order.surcharge_minor else []
    if not order.discount_minor:
        return [{"description": name, "quantity": quantity, "net_minor": goods_net}, *surcharge]
    price = goods_net + order.discount_minor if not settings.get("vat_inclusive") else (
        order.amount_minor - order.surcharge_minor + order.discount_minor)
    price_net, _vat, _total = vat_totals(price, order.vat_rate_percent, settings.get("vat_inclusive"))
    return [
        {"description": name, "quantity": quantity, "net_minor": price_net},
        {"description": f"{_('Promo code')} {order.promo_code}", "quantity": 1, "net_minor": goods_net - price_net},
        *surcharge,
    ]


_TO_NUMBER = "invoices_to_number"


def _next_sequence(session: Session, year: int) -> int:
    """The year's next number, in one statement: the year's row is made at 1 or incremented under its lock."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    counters = InvoiceCounter.__table__
    statement = insert(counters).values(year=year, last_number=1)
    return session.execute(statement.on_conflict_do_update(
        index_elements=[counters.c.year], set_={"last_number": counters.c.last_number + 1},
    ).returning(counters.c.last_number)).scalar_one()


def issue(invoice: Invoice) -> None:
    """Issue the invoice (once): it gets its number, e.g. 2026-000123 in the seller's calendar year, when this
    transaction commits, or at once through `number_now`."""
    waiting = db.session.info.setdefault(_TO_NUMBER, [])
    if invoice.number is None and invoice not in waiting:
        waiting.append(invoice)


def number_now(invoice: Invoice) -> None:
    """Number the invoice before the commit, for a text that shows its number in this transaction."""
    if invoice in db.session.info.get(_TO_NUMBER, []):
        _number_issued_invoices(db.session())


@event.listens_for(Session, "before_commit")
def _number_issued_invoices(session: Session) -> None:
    for invoice in session.info.pop(_TO_NUMBER, []):
        if invoice.number is not None or invoice not in session:
            continue
        moment = now()
        year = local_day(moment).year
        invoice.year, invoice.sequence = year, _next_sequence(session, year)
        invoice.number = f"{year}-{invoice.sequence:06d}"
        invoice.issued_at = moment


@event.listens_for(Session, "after_rollback")
def _forget_issued_invoices(session: Session) -> None:
    session.info.pop(_TO_NUMBER, None)


def remove_with_order(order: Order) -> None:
    """An order that may be deleted never had money accepted, so its invoice (if any) was never issued: it goes
    with the order, and the numbering has no gap."""
    if order.invoice is None:
        return
    if order.invoice.number is not None:  # never: an issued invoice is a tax document of money accepted
        raise RuntimeError(f"order {order.number} has issued invoice {order.invoice.number}; it is not deleted")
    db.session.delete(order.invoice)
