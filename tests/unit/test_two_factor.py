"""Two-factor sign-in (services/two_factor.py): enrolment, the ±1 step window, no replay, recovery codes
that work once (also when 16 callers bring the same one at once, on PostgreSQL), regeneration, turning off."""
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Customer
from limonbilling.services import ServiceError, ValidationFailed, audit, settings, two_factor

from ..factories import PASSWORD, make_agent, make_customer
from .test_lifecycle_races import THREADS, no_errors, race, worker  # noqa: F401 (worker is a fixture)

ACTOR = audit.Actor.system("test")


def code_at(user, moment: datetime, steps: int = 0) -> str:
    """The code the user's app shows at `moment`, `steps` time steps (30 s) later or earlier."""
    return pyotp.TOTP(user.totp_secret).at(moment.replace(tzinfo=UTC) + timedelta(seconds=30 * steps))


def audits(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action))


def enrolled(user, clock) -> list[str]:
    """Two-factor sign-in turned on; the clock moves on one step, so the confirming code is in the past."""
    two_factor.start_enrolment(user)
    codes = two_factor.confirm_enrolment(user, code_at(user, clock.now()), ACTOR)
    db.session.commit()
    clock.advance(seconds=30)
    return codes


def test_enrolment_gives_a_uri_with_the_company_and_ten_codes_kept_only_as_hashes(app, clock):
    settings.update({"company_name": "Limon Destek"}, ACTOR)
    customer = make_customer(email="ayse@example.com")
    secret = two_factor.start_enrolment(customer)
    assert two_factor.start_enrolment(customer) == secret  # opening the page again keeps the scanned secret
    uri = two_factor.provisioning_uri(customer)
    assert uri.startswith("otpauth://totp/Limon%20Destek:ayse%40example.com?") and f"secret={secret}" in uri
    assert "issuer=Limon%20Destek" in uri
    version = customer.session_version
    with pytest.raises(ValidationFailed) as wrong:
        two_factor.confirm_enrolment(customer, code_at(customer, clock.now(), steps=2), ACTOR)
    assert "code" in wrong.value.errors and not customer.two_factor_enabled

    codes = two_factor.confirm_enrolment(customer, code_at(customer, clock.now()), ACTOR)
    db.session.commit()
    assert customer.two_factor_enabled and customer.totp_enabled_at == clock.now()
    assert len(codes) == len(set(codes)) == 10 and all(len(code) == 19 for code in codes)
    assert len(customer.recovery_code_hashes) == 10
    assert not set(codes) & set(customer.recovery_code_hashes)
    assert not any(code.replace("-", "") in str(customer.recovery_code_hashes) for code in codes)
    assert customer.session_version == version + 1  # every other session ended
    assert audits("customer.two_factor_enabled") == 1
    with pytest.raises(ServiceError) as again:
        two_factor.start_enrolment(customer)
    assert again.value.code == "already_enabled"


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_a_code_is_accepted_one_step_either_side_of_now_and_no_further(app, clock, steps, accepted):
    customer = make_customer()
    enrolled(customer, clock)
    clock.advance(minutes=10)  # the step spent on enrolment is long gone
    assert two_factor.check_code(customer, code_at(customer, clock.now(), steps)) is accepted


def test_a_code_ages_out_after_the_window_by_the_clock(app, clock):
    customer = make_customer()
    enrolled(customer, clock)  # now at the start of a step
    code = code_at(customer, clock.now())
    clock.advance(seconds=60)
    assert two_factor.check_code(customer, code) is False  # two steps later
    clock.advance(seconds=-1)
    assert two_factor.check_code(customer, code) is True  # 59 s later: the step before


def test_a_code_works_once_and_older_steps_after_it_not_at_all(app, clock):
    customer = make_customer()
    enrolled(customer, clock)
    newer = code_at(customer, clock.now(), steps=1)
    assert two_factor.check_code(customer, newer) is True
    assert two_factor.check_code(customer, newer) is False  # replayed
    assert two_factor.check_code(customer, code_at(customer, clock.now())) is False  # an older step
    assert two_factor.check_code(customer, code_at(customer, clock.now(), steps=-1)) is False
    clock.advance(seconds=60)
    assert two_factor.check_code(customer, code_at(customer, clock.now())) is True  # the next step is new


@pytest.mark.parametrize("garbage", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"])
def test_what_is_not_six_digits_is_no_code(app, clock, garbage):
    customer = make_customer()
    enrolled(customer, clock)
    assert two_factor.check_code(customer, garbage) is False


def test_a_recovery_code_works_once_written_as_people_copy_it(app, clock):
    customer = make_customer()
    codes = enrolled(customer, clock)
    assert two_factor.use_recovery_code(customer, f"  {codes[3].upper().replace('-', ' ')} ", ACTOR) is True
    assert two_factor.use_recovery_code(customer, codes[3], ACTOR) is False
    assert two_factor.use_recovery_code(customer, "aaaa-aaaa-aaaa-aaaa", ACTOR) is False
    db.session.commit()
    assert len(customer.recovery_code_hashes) == 9
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.recovery_code_used"))
    assert entry.details == {"left": 9} and entry.target_id == str(customer.id)


def test_the_second_step_signs_in_with_a_code_or_a_recovery_code_and_counts_the_failures(app, clock):
    agent = make_agent("support")
    codes = enrolled(agent, clock)
    started = clock.now()
    actor = audit.Actor.of(agent, "198.51.100.7")
    wrong = "000000" if code_at(agent, started) != "000000" else "111111"
    assert two_factor.second_step(agent, wrong, actor, pending_since=started) is False
    assert two_factor.second_step(agent, "not-a-code", actor, pending_since=started) is False
    assert two_factor.failed_attempts(agent, since=started) == 2
    assert two_factor.failed_attempts(agent, since=started + timedelta(seconds=1)) == 0
    assert two_factor.second_step(agent, code_at(agent, started), actor, pending_since=started) is True
    assert two_factor.second_step(agent, codes[0], actor, pending_since=started) is True
    for _third_to_fifth in range(3):
        assert two_factor.second_step(agent, wrong, actor, pending_since=started) is False
    with pytest.raises(ServiceError, match="Too many wrong codes"):  # the sixth is not even tried
        two_factor.second_step(agent, code_at(agent, started), actor, pending_since=started)
    db.session.commit()
    methods = db.session.scalars(select(AuditEntry.details).where(AuditEntry.action == "agent.sign_in")
                                 .order_by(AuditEntry.id)).all()
    assert methods == [{"method": "totp"}, {"method": "recovery_code"}]
    failed = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "agent.two_factor_failed")).all()
    assert [entry.ip for entry in failed] == ["198.51.100.7"] * two_factor.MAX_FAILURES


def test_new_recovery_codes_need_a_current_code_and_replace_the_old_ones(app, clock):
    customer = make_customer()
    old = enrolled(customer, clock)
    with pytest.raises(ValidationFailed):
        two_factor.regenerate_recovery_codes(customer, old[0], ACTOR)  # a recovery code is not enough
    new = two_factor.regenerate_recovery_codes(customer, code_at(customer, clock.now()), ACTOR)
    db.session.commit()
    assert len(new) == 10 and not set(new) & set(old)
    assert two_factor.use_recovery_code(customer, old[1], ACTOR) is False
    assert two_factor.use_recovery_code(customer, new[1], ACTOR) is True
    assert audits("customer.recovery_codes_regenerated") == 1


def test_turning_off_needs_the_password_and_a_code_or_a_recovery_code(app, clock):
    customer = make_customer()
    codes = enrolled(customer, clock)
    with pytest.raises(ValidationFailed) as wrong_password:
        two_factor.disable(customer, "wrong-pass-1", code_at(customer, clock.now()), ACTOR)
    assert set(wrong_password.value.errors) == {"password"}
    with pytest.raises(ValidationFailed) as wrong_code:
        two_factor.disable(customer, PASSWORD, "123", ACTOR)
    assert set(wrong_code.value.errors) == {"code"}
    two_factor.disable(customer, PASSWORD, codes[0], ACTOR)
    db.session.commit()
    assert not customer.two_factor_enabled and customer.totp_secret is None and customer.recovery_code_hashes is None
    assert audits("customer.two_factor_disabled") == 1
    assert two_factor.start_enrolment(customer) != ""  # a new secret for a new set-up


def test_an_agent_cannot_turn_it_off_while_the_owner_requires_it_a_customer_can(app, clock):
    settings.update({"require_two_factor_agents": True}, ACTOR)
    agent, customer = make_agent("billing"), make_customer()
    enrolled(agent, clock)
    enrolled(customer, clock)
    assert two_factor.required_for(agent) and not two_factor.required_for(customer)
    with pytest.raises(ServiceError) as refused:
        two_factor.disable(agent, PASSWORD, code_at(agent, clock.now()), ACTOR)
    assert refused.value.code == "required"
    two_factor.disable(customer, PASSWORD, code_at(customer, clock.now()), ACTOR)
    assert not customer.two_factor_enabled


def test_only_an_owner_requires_it_of_every_agent(app):
    """The rule is the service's, not only the page's @requires(OWNER): an agent with `settings`, or an owner no
    longer active, is refused."""
    for agent in (make_agent("settings"), make_agent(is_owner=True, active=False)):
        with pytest.raises(ServiceError) as refused:
            two_factor.require_for_agents(True, audit.Actor.of(agent))
        assert refused.value.code == "owner_only"
    assert settings.get("require_two_factor_agents") is False
    owner = make_agent(is_owner=True)
    two_factor.require_for_agents(True, audit.Actor.of(owner))
    assert settings.get("require_two_factor_agents") is True


def test_many_callers_with_one_recovery_code_have_one_success(app, clock, database_url, worker):  # noqa: F811
    """Each caller loads the account (as the sign-in page does) before the barrier; only the row lock keeps
    them from all spending the same code."""
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite serialises writers and would hide the race; it runs on PostgreSQL only")
    customer = make_customer()
    code = enrolled(customer, clock)[0]
    customer_id = customer.id

    def caller():
        account = db.session.get(Customer, customer_id)
        return lambda: two_factor.use_recovery_code(account, code, ACTOR)

    outcomes = race(worker, [caller] * THREADS)
    no_errors(outcomes)
    assert sorted(outcome.value for outcome in outcomes) == [False] * (THREADS - 1) + [True]
    assert len(db.session.get(Customer, customer_id).recovery_code_hashes) == 9
    assert audits("customer.recovery_code_used") == 1


def test_many_wrong_codes_sent_at_once_get_no_more_tries_than_the_limit(app, clock, database_url, worker):  # noqa: F811
    """The sign-in page counted the wrong codes before the account's row lock: a burst of parallel guesses
    could all pass the check of five and be tried. They are counted under the lock now."""
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite serialises writers and would hide the race; it runs on PostgreSQL only")
    customer = make_customer()
    enrolled(customer, clock)
    customer_id, started = customer.id, clock.now()

    def caller():
        account = db.session.get(Customer, customer_id)
        return lambda: two_factor.second_step(account, "000000", ACTOR, pending_since=started)

    outcomes = race(worker, [caller] * THREADS)
    no_errors(outcomes)
    assert sorted(str(outcome.value) for outcome in outcomes) == (
        ["False"] * two_factor.MAX_FAILURES + ["too_many_codes"] * (THREADS - two_factor.MAX_FAILURES))
    assert audits("customer.two_factor_failed") == two_factor.MAX_FAILURES
