"""A Hypothesis state machine over the entitlement rules and the ledger.

Random purchases of both types (so switches), charges of new tickets and chats (and repeats of old
ones), order cancellations, credit adjustments and the clock moving: after every step the balance
equals the ledger and is never negative, a customer holds one package type at a time, subscription
periods never overlap, and a repeated reference never charges twice.
"""
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from limonbilling.extensions import db
from limonbilling.models import Customer, Order
from limonbilling.services import ServiceError, charging, holdings, ledger, order_actions, placement

from ..factories import make_customer, make_department, make_package
from ..payment_support import AGENT


@pytest.mark.slow
def test_the_rules_hold_whatever_happens(app, clock):
    web, mail = make_department("Web", credit_per_request=2), make_department("Mail", credit_per_request=3)
    catalogue = [
        make_package("credit", [web], credits=5, price="50.00"),
        make_package("credit", [web, mail], credits=12, price="100.00"),
        make_package("subscription", [web, mail], days=30, price="300.00"),
        make_package("subscription", [mail], days=7, price="90.00"),
    ]
    departments = [web.id, mail.id]
    package_ids = [package.id for package in catalogue]
    package_types = [package.type for package in catalogue]

    class Customers(RuleBasedStateMachine):
        @initialize(index=st.integers(0, len(package_ids) - 1))
        def a_new_customer_with_a_first_package(self, index):
            self.customer_id = make_customer().id
            self.references: dict[str, tuple[str, int]] = {}  # reference → (kind, department) charged
            self.counter = 0
            self.buy(index)

        def _customer(self) -> Customer:
            return db.session.get(Customer, self.customer_id)

        def _attempt(self, action, *args, **kwargs):
            """Run one step as one transaction; a refusal by the rules rolls it back and is fine."""
            try:
                result = action(*args, **kwargs)
            except ServiceError:
                db.session.rollback()
                return None
            db.session.commit()
            return result

        @rule(index=st.integers(0, len(package_ids) - 1))
        def buy(self, index):
            from limonbilling.models import Package

            self._attempt(placement.place_agent_order, self._customer(), db.session.get(Package, package_ids[index]),
                          payment_method="manual", actor=AGENT)

        @rule(data=st.data())
        def switch_type(self, data):
            """Rule 4 on purpose: a package of the type the customer does not hold (forfeits what is left), so a
            run does not depend on drawing one by chance."""
            held = self._customer().package_type
            self.buy(data.draw(st.sampled_from([i for i, kind in enumerate(package_types) if kind != held])))

        @rule(department=st.sampled_from(departments), kind=st.sampled_from(["ticket", "chat"]))
        def open_something_new(self, department, kind):
            self.counter += 1
            reference = f"{self.customer_id}-{self.counter}"
            result = self._attempt(charging.charge_usage, self.customer_id, department, kind, reference)
            if result is not None:
                self.references[reference] = (kind, department)

        @rule(data=st.data())
        def repeat_an_old_one(self, data):
            if not self.references:
                return
            reference = data.draw(st.sampled_from(sorted(self.references)))
            kind, department = self.references[reference]
            before = self._customer().credits
            result = self._attempt(charging.charge_usage, self.customer_id, department, kind, reference)
            assert result is not None and result.repeated
            assert self._customer().credits == before  # a repeat never charges

        @rule(data=st.data())
        def cancel_an_order(self, data):
            mine = list(db.session.scalars(db.select(Order).where(
                Order.customer_id == self.customer_id, Order.status != "cancelled").order_by(Order.id)))
            if mine:
                self._attempt(order_actions.cancel_order, data.draw(st.sampled_from(mine)), AGENT)

        @rule(credits=st.integers(-20, 20).filter(bool))
        def adjust(self, credits):
            self._attempt(ledger.adjust_credits, self._customer(), credits, "property test", AGENT)

        @rule(days=st.integers(0, 40), hours=st.integers(0, 23))
        def time_passes(self, days, hours):
            clock.advance(days=days, hours=hours)

        @invariant()
        def the_balance_is_the_ledger_and_never_negative(self):
            if not hasattr(self, "customer_id"):
                return
            customer = self._customer()
            db.session.refresh(customer)
            assert customer.credits == ledger.ledger_sum(customer.id) >= 0

        @invariant()
        def one_package_type_at_a_time(self):
            if hasattr(self, "customer_id"):
                customer = self._customer()
                assert customer.package_type != "subscription" or customer.credits == 0

        @invariant()
        def periods_never_overlap(self):
            if not hasattr(self, "customer_id"):
                return
            periods = holdings.subscription_periods(self._customer())
            for earlier, later in zip(periods, periods[1:], strict=False):
                assert later.starts_at >= earlier.effective_end, (earlier, later)

    run_state_machine_as_test(Customers, settings=settings(
        max_examples=40, stateful_step_count=25, deadline=None, database=None, derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
    # The machine did real work: purchases of both types, charges, and switches that forfeited something.
    from limonbilling.models import LedgerEntry, Usage

    kinds = set(db.session.scalars(db.select(LedgerEntry.kind).distinct()))
    assert {"purchase", "usage", "forfeit"} <= kinds, kinds
    assert db.session.scalar(db.select(db.func.count(Usage.id))) > 0  # how many depends on the derandomized seed
