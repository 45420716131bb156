"""Money is kept in 64-bit columns: amounts past 2,147,483,647 minor units (21,474,836.47) are stored exactly.

An account balance that collected two large refunds used to be refused, and on PostgreSQL a 32-bit column
answers "integer out of range" to anything bigger.
"""
import pytest
from sqlalchemy import inspect

from limonbilling.extensions import db
from limonbilling.models import AccountBalance, BalanceEntry, Invoice, Order, Package, Payment, PromoCode
from limonbilling.services import balance

from ..factories import make_customer

PAST_32_BITS = 2**31 + 5


def test_a_balance_past_32_bits_is_kept_to_the_kuru(app):
    customer = make_customer()
    balance.move(customer.id, "TRY", PAST_32_BITS, "adjustment", reason="two large refunds")
    balance.move(customer.id, "TRY", 2**40, "adjustment", reason="and more")
    db.session.commit()
    db.session.expire_all()
    assert balance.amounts(customer) == {"TRY": PAST_32_BITS + 2**40}
    last = db.session.scalars(db.select(BalanceEntry).order_by(BalanceEntry.id.desc())).first()
    assert (last.amount_minor, last.balance_after_minor) == (2**40, PAST_32_BITS + 2**40)


def test_the_balance_stops_at_what_a_64_bit_column_holds(app):
    customer = make_customer()
    balance.move(customer.id, "TRY", balance.MAX_BALANCE_MINOR, "adjustment", reason="the most")
    with pytest.raises(balance.BalanceLimit):
        balance.move(customer.id, "TRY", 1, "adjustment", reason="one more kuruş")
    db.session.rollback()


@pytest.mark.parametrize("model, columns", [
    (Order, ["discount_minor", "amount_minor", "vat_minor"]), (Invoice, ["net_minor", "vat_minor", "total_minor"]),
    (Package, ["price_minor"]), (Payment, ["amount_minor", "vat_minor"]), (PromoCode, ["value"]),
    (AccountBalance, ["amount_minor"]), (BalanceEntry, ["amount_minor", "balance_after_minor"]),
])
def test_every_money_column_is_64_bit_in_the_database(app, model, columns):
    """Read back from the database (made from the models; tests/unit/test_migrations.py proves the migrations
    make the same schema)."""
    found = {column["name"]: column["type"] for column in inspect(db.engine).get_columns(model.__tablename__)}
    for name in columns:
        assert str(found[name]).upper() == "BIGINT", name
