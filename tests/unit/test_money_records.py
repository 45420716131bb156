"""Records of money outlive any delete: the database itself refuses to delete a customer who has orders,
invoices, ledger or balance entries, or an order that has payments or refunds (RESTRICT, not CASCADE), so
no bug and no hand-written DELETE can make them vanish."""
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from limonbilling.extensions import db
from limonbilling.models import BalanceEntry, Customer, Invoice, LedgerEntry, Order, Payment, Refund
from limonbilling.services import card_payments

from ..factories import make_customer, make_department, make_package
from ..payment_support import BANK, bank_answer, card_order, refund_to_balance


@pytest.fixture
def refunded(gateway):
    """A customer whose card order was paid, then refunded to the account balance (no order is deletable)."""
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [make_department()], credits=5))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    refund_to_balance(order)
    db.session.commit()
    return customer, order


def _counts(customer_id: int) -> tuple:
    return tuple(db.session.scalar(select(func.count()).select_from(model).where(column == customer_id))
                 for model, column in ((Order, Order.customer_id), (Invoice, Invoice.customer_id),
                                       (LedgerEntry, LedgerEntry.customer_id),
                                       (BalanceEntry, BalanceEntry.customer_id)))


def test_the_database_refuses_to_delete_a_customer_with_money_records(refunded):
    customer, _order = refunded
    before = _counts(customer.id)
    assert all(before)  # an order, its invoice, the credit ledger, the balance entry of the refund
    with pytest.raises(IntegrityError):
        db.session.execute(delete(Customer).where(Customer.id == customer.id))
        db.session.flush()
    db.session.rollback()
    assert _counts(customer.id) == before


def test_the_database_refuses_to_delete_an_order_with_payments_or_refunds(refunded):
    _customer, order = refunded
    for model in (Order, Payment):
        with pytest.raises(IntegrityError):
            statement = delete(model).where((model.id if model is Order else model.order_id) == order.id)
            db.session.execute(statement)
            db.session.flush()
        db.session.rollback()
    assert (db.session.scalar(select(func.count(Payment.id))), db.session.scalar(select(func.count(Refund.id))),
            db.session.get(Order, order.id) is not None) == (1, 1, True)
