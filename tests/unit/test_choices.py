"""One enum per closed set of stored values (models/choices.py, models/lifecycle.py): the CHECKs, the OpenAPI
enums, the form choices and the page labels are all made from it. (The migrations' CHECKs are compared with
the models' in test_migrations.py.)"""
import pytest
from flask_babel import force_locale

from limonbilling import create_app
from limonbilling.api.openapi import SCHEMAS
from limonbilling.forms import choices_of
from limonbilling.labels import LABELS, label
from limonbilling.models import Choice, Currency, InvoiceState, OrderKind, OrderState, PaymentMethod, PaymentState


def _every_choice(cls=Choice):
    for sub in cls.__subclasses__():
        yield sub
        yield from _every_choice(sub)


@pytest.fixture(scope="module")
def turkish():
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.test_request_context(), force_locale("tr"):
        yield


def test_the_check_is_made_from_the_members_in_their_order():
    assert OrderKind.check("kind") == "kind IN ('new', 'top-up', 'renewal', 'switch', 'balance')"
    assert (OrderKind.check("kind", excluding={OrderKind.BALANCE})
            == "kind IN ('new', 'top-up', 'renewal', 'switch')")
    assert (OrderState.check("counts_as", excluding={OrderState.FRAUD})
            == "counts_as IN ('pending', 'active', 'cancelled')")


@pytest.mark.parametrize("value, known", [("TRY", True), ("try", False), ("", False), (None, False), (["TRY"], False),
                                          (Currency.EUR, True)])
def test_has_answers_for_any_input_without_raising(value, known):
    assert Currency.has(value) is known


def test_every_value_has_a_label_and_every_label_group_is_an_enum():
    for choice in _every_choice():
        for member in choice:
            assert str(member.label).strip(), f"{choice.__name__}.{member.name}"
            assert choice(member.value) is member and member == member.value
    assert all(issubclass(choice, Choice) for choice in LABELS.values())


def test_a_label_is_the_readers_word_and_an_unknown_value_shows_as_it_is(turkish):
    assert label("top-up", "order_kind") == "Kredi yükleme" == str(OrderKind.TOP_UP.label)
    assert label("bank_transfer", "payment_method") == "Havale/EFT" == str(PaymentMethod.BANK_TRANSFER.label)
    assert label("gone", "order_status") == "gone"
    assert label(None, "order_status") == ""


def test_form_choices_carry_the_values_and_labels_of_the_enum():
    assert [(c.value, c.label) for c in choices_of(InvoiceState)] == [(m.value, m.label) for m in InvoiceState]
    assert [c.value for c in choices_of(PaymentMethod, excluding={PaymentMethod.FREE})] == [
        "card", "bank_transfer", "account_balance", "manual"]


@pytest.mark.parametrize("schema, field, choice", [("Order", "status", OrderState), ("Order", "kind", OrderKind),
                                                   ("Payment", "method", PaymentMethod),
                                                   ("Payment", "state", PaymentState),
                                                   ("Package", "currency", Currency)])
def test_the_openapi_enums_are_the_stored_values(schema, field, choice):
    assert SCHEMAS[schema]["properties"][field]["enum"] == [member.value for member in choice]
