"""Card instalments (taksit): the arithmetic, the settings, placing an order in instalments, its invoice, the
bank's answer with a count, and refunds of an instalment sale (services/instalments.py)."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import PromoCode, RefundDestination
from limonbilling.services import (
    ServiceError,
    ValidationFailed,
    card_payments,
    instalments,
    placement,
    refunds,
    settings,
)
from limonbilling.services.instalments import Plan, split, surcharge

from ..factories import make_customer, make_department, make_package
from ..payment_support import (
    AGENT,
    BANK,
    as_customer,
    bank_answer,
    card_order,
    configure_gateway,
    offer_instalments,
    refund_to_balance,
    refund_to_card,
)

# --- the arithmetic (no database) --------------------------------------------------------------------------------


@pytest.mark.parametrize(("price", "points", "expected"), [
    (10000, 0, 0), (10000, 250, 250), (100, 150, 2), (100, 149, 1), (100, 50, 1), (100, 49, 0),
    (3, 5000, 2), (10001, 50, 50), (10010, 50, 50), (10100, 50, 51), (99999, 10000, 99999),
])
def test_surcharge_is_rounded_half_up_to_the_kurus(price, points, expected):
    # 100 × 1.50 % = 1.5 kuruş → 2; 100 × 0.50 % = 0.5 → 1; 10 100 × 0.50 % = 50.5 → 51
    assert surcharge(price, points) == expected


def test_split_puts_the_odd_kurus_on_the_first_instalments():
    assert split(10000, 3).parts == (3334, 3333, 3333)
    three = split(10000, 3, 250)
    assert (three.surcharge_minor, three.total_minor, three.parts) == (250, 10250, (3417, 3417, 3416))
    assert split(12000, 6, 0).parts == (2000,) * 6 and split(12000, 6).even
    assert split(15000, 1, 900) == instalments.Split(1, 15000, 0, (15000,))  # a single payment has no surcharge


# --- settings -------------------------------------------------------------------------------------------------


def test_plans_are_parsed_from_lines(app):
    assert instalments.parse_plans("6; 600,00; 4.75\n\n 3 ; 300.00 ; 2.5 \n12;0;0") == [
        Plan(3, 30000, 250), Plan(6, 60000, 475), Plan(12, 0, 0)]


@pytest.mark.parametrize("line", [
    "1; 100.00; 2", "13; 100.00; 2", "3; 100.00", "3; abc; 2", "3; 100.00; 100.01", "3; 100.00; 2.555",
    "3; 100.00; -1", "3; 100.00; x", "3; 100.00; NaN", "3; 100.00; 1e2", "3; 100.00; ٢", "3; -5; 2",
    "٣; 100.00; 2", "3; 100.00; 2; 4",
])
def test_a_bad_line_is_refused_with_its_number(app, line):
    with pytest.raises(ValidationFailed) as refused:
        instalments.parse_plans("2; 100.00; 1\n" + line)
    assert list(refused.value.errors) == ["card_instalment_plans"]
    assert refused.value.errors["card_instalment_plans"][0].startswith("Line 2:")


def test_a_count_listed_twice_is_refused(app):
    with pytest.raises(ValidationFailed) as refused:
        instalments.parse_plans("3; 100; 1\n3; 200; 2")
    assert "twice" in refused.value.errors["card_instalment_plans"][0]


def test_saving_and_showing_the_plans(app):
    assert instalments.save_settings(True, "3; 300; 2.5\n6; 600.00; 0", AGENT) == [
        "card_instalments_enabled", "card_instalment_plans"]
    assert settings.get("card_instalment_plans") == [
        {"count": 3, "minimum_minor": 30000, "surcharge_basis_points": 250},
        {"count": 6, "minimum_minor": 60000, "surcharge_basis_points": 0}]
    assert instalments.plans_text() == "3; 300.00; 2.50\n6; 600.00; 0.00"
    with pytest.raises(ValidationFailed):
        instalments.save_settings(True, "", AGENT)
    assert instalments.save_settings(False, "", AGENT) == ["card_instalments_enabled", "card_instalment_plans"]


# --- what is offered, and the minimum per count ---------------------------------------------------------------


def test_nothing_is_offered_while_off_or_for_another_currency(app):
    settings.update({"card_instalment_plans": [{"count": 3, "minimum_minor": 0, "surcharge_basis_points": 0}]},
                    AGENT)
    assert instalments.offered(50000, "TRY") == []
    offer_instalments((3, 0, 0))
    assert [option.count for option in instalments.offered(50000, "TRY")] == [3]
    assert instalments.offered(50000, "USD") == [] and instalments.offered(50000, "EUR") == []
    with pytest.raises(ServiceError, match="not available"):
        instalments.choose(50000, "USD", 3, "card")


def test_the_minimum_of_each_count_is_allowed_exactly_and_refused_a_kurus_below(app):
    offer_instalments((3, 30000, 250), (6, 60000, 500))
    assert [option.count for option in instalments.offered(60000, "TRY")] == [3, 6]
    assert [option.count for option in instalments.offered(59999, "TRY")] == [3]
    assert [option.count for option in instalments.offered(30000, "TRY")] == [3]
    assert instalments.offered(29999, "TRY") == []
    assert instalments.choose(60000, "TRY", 6, "card").total_minor == 63000
    with pytest.raises(ServiceError) as refused:
        instalments.choose(59999, "TRY", 6, "card")
    assert refused.value.code == "instalments_minimum" and "600.00" in refused.value.message


@pytest.mark.parametrize(("count", "method", "code"), [
    (4, "card", "instalments_count"), (3, "bank_transfer", "instalments_card_only"),
    (3, "account_balance", "instalments_card_only"),
])
def test_a_count_not_offered_is_refused(app, count, method, code):
    offer_instalments((3, 0, 0))
    with pytest.raises(ServiceError) as refused:
        instalments.choose(50000, "TRY", count, method)
    assert refused.value.code == code


# --- an order in instalments ----------------------------------------------------------------------------------


@pytest.fixture
def support(app):
    return make_department("Support", credit_per_request=3)


def test_an_order_in_three_instalments_records_the_count_and_the_surcharge(app, support):
    configure_gateway()
    offer_instalments((3, 30000, 250))
    order, attempt = card_order(make_customer(), make_package("credit", [support], credits=10, price="1000.00"),
                                instalment_count=3)
    # 1 000.00 × 2.50 % = 25.00 surcharge, VAT 20 % included in both: 1 025.00 in all, 170.83 VAT.
    assert (order.instalments, order.surcharge_minor, order.amount_minor) == (3, 2500, 102500)
    assert order.vat_minor == 16667 + 417  # the price's VAT, and the surcharge's (25.00 / 1.2 = 20.83 net)
    assert (attempt.instalments, attempt.amount_minor, attempt.vat_minor) == (3, 102500, order.vat_minor)
    invoice = order.invoice
    assert (invoice.instalments, invoice.total_minor, invoice.vat_minor) == (3, 102500, order.vat_minor)
    assert invoice.lines == [
        {"description": order.item_label, "quantity": 1, "net_minor": 83333},
        {"description": "Instalment surcharge (3 instalments)", "quantity": 1, "net_minor": 2083},
    ]
    assert sum(line["net_minor"] for line in invoice.lines) == invoice.net_minor == 102500 - order.vat_minor


def test_the_surcharge_line_with_a_promo_code_and_vat_on_top(app, support):
    configure_gateway()
    settings.update({"vat_inclusive": False}, AGENT)
    offer_instalments((6, 0, 333))
    db.session.add(PromoCode(code="TEN", kind="percent", value=10))
    customer = make_customer()
    order = placement.place_customer_order(
        customer, make_package("credit", [support], credits=10, price="99.99"), payment_method="card",
        actor=as_customer(customer), promo_code="TEN", instalment_count=6,
        contracts_accepted=True)
    # 99.99 − 10.00 = 89.99 net, +20 % VAT = 107.99; 3.33 % of it = 3.596… → 3.60 surcharge, VAT inside.
    assert (order.discount_minor, order.surcharge_minor, order.amount_minor) == (1000, 360, 10799 + 360)
    lines = order.invoice.lines
    assert [line["net_minor"] for line in lines] == [9999, -1000, 300]
    assert sum(line["net_minor"] for line in lines) == order.invoice.net_minor == order.amount_minor - order.vat_minor


def test_a_single_payment_has_no_surcharge_line(app, support):
    configure_gateway()
    offer_instalments((3, 0, 250))
    order, attempt = card_order(make_customer(), make_package("credit", [support], credits=10))
    assert (order.instalments, order.surcharge_minor, attempt.instalments, order.invoice.instalments) == (1, 0, 1, 1)
    assert len(order.invoice.lines) == 1


def test_an_order_below_the_minimum_is_not_placed(app, support):
    configure_gateway()
    offer_instalments((3, 15001, 0))
    customer = make_customer()
    with pytest.raises(ServiceError) as refused:
        placement.place_customer_order(customer, make_package("credit", [support], credits=10, price="150.00"),
                                       payment_method="card", actor=as_customer(customer), instalment_count=3,
                                       contracts_accepted=True)
    assert refused.value.code == "instalments_minimum"


# --- the bank's answer ----------------------------------------------------------------------------------------


def test_the_banks_approval_with_the_orders_count_pays_the_order(app, support):
    gateway = configure_gateway()
    offer_instalments((6, 0, 100))
    order, attempt = card_order(make_customer(), make_package("credit", [support], credits=10), instalment_count=6)
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert (order.payment_status, attempt.state, order.refunds) == ("paid", "confirmed", [])


@pytest.mark.parametrize(("ordered", "said"), [(3, "6"), (3, ""), (1, "3")])
def test_an_approval_with_another_count_is_refused_and_the_money_returned(app, support, ordered, said):
    gateway = configure_gateway()
    offer_instalments((3, 0, 100))
    order, attempt = card_order(make_customer(), make_package("credit", [support], credits=10),
                                instalment_count=ordered)
    card_payments.apply_card_callback(gateway, bank_answer(attempt, Instalment=said), BANK)
    db.session.commit()
    assert (attempt.state, attempt.failure_code, order.activated) == ("confirmed", "instalment_mismatch", False)
    [refund] = order.refunds
    assert (refund.automatic, refund.destination, refund.amount_minor, refund.state) == (
        True, "card", attempt.amount_minor, "created")
    assert "instalments" in refund.reason and order.awaiting_payment is False


# --- refunds of an instalment sale ----------------------------------------------------------------------------


def paid_in_instalments(support, count=3):
    gateway = configure_gateway()
    offer_instalments((count, 0, 200))
    order, attempt = card_order(make_customer(), make_package("credit", [support], credits=10), instalment_count=count)
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return order, attempt


def test_a_partial_card_refund_of_an_instalment_sale_is_refused(app, support):
    order, attempt = paid_in_instalments(support)
    with pytest.raises(ServiceError) as refused:
        refund_to_card(order, configure_gateway(), amount_minor=attempt.amount_minor - 1)
    assert refused.value.code == "instalments_whole_refund"


def test_an_instalment_sale_is_refunded_whole_to_the_card(app, support):
    order, attempt = paid_in_instalments(support)
    [refund] = refunds.start(order, to=RefundDestination.CARD, actor=AGENT)
    assert refund.amount_minor == attempt.amount_minor == order.amount_minor
    assert refunds.card_plan(order) is None and refund.closes_order  # all of it: the order is cancelled when made


def test_part_to_the_balance_then_the_rest_is_not_refunded_to_the_card(app, support):
    order, attempt = paid_in_instalments(support)
    refund_to_balance(order, amount_minor=1000)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        refund_to_card(order, configure_gateway())
    assert refused.value.code == "instalments_whole_refund"
    assert order.refundable_minor == attempt.amount_minor - 1000
