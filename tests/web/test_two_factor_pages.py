"""Two-factor sign-in through the pages: set-up, the second step of signing in (code, recovery code, wrong
codes, expiry, `next`), the owner's requirement for agents, and the audit entries all of it leaves."""
import re
from datetime import UTC

import pyotp
import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry
from limonbilling.services import audit, settings, two_factor

from ..factories import PASSWORD, make_agent, make_customer, sign_in

ACTOR = audit.Actor.system("test")


def code_now(user, clock) -> str:
    return pyotp.TOTP(user.totp_secret).at(clock.now().replace(tzinfo=UTC))


def enrolled(user, clock) -> list[str]:
    two_factor.start_enrolment(user)
    codes = two_factor.confirm_enrolment(user, code_now(user, clock), ACTOR)
    db.session.commit()
    clock.advance(seconds=30)  # the step spent on enrolment is past
    return codes


def actions(user) -> list[str]:
    return db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_id == str(user.id), AuditEntry.target_type == type(user).__tablename__)
        .order_by(AuditEntry.id)).all()


def login_path(user) -> str:
    return "/admin/login" if user.kind == "agent" else "/login"


def password_step(client, user, next_path: str | None = None):
    query = f"?next={next_path}" if next_path else ""
    return client.post(login_path(user) + query, data={"email": user.email, "password": PASSWORD})


def second_step(client, user, code: str, next_path: str | None = None):
    query = f"?next={next_path}" if next_path else ""
    return client.post(login_path(user) + "/two-factor" + query, data={"code": code})


def signed_in_as_agent(client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.mark.parametrize("area", ["admin", "portal"])
def test_setting_it_up_shows_the_qr_code_and_the_secret_then_the_recovery_codes_once(app, clock, area):
    settings.update({"company_name": "Limon Destek"}, ACTOR)
    user = make_agent() if area == "admin" else make_customer()
    client = app.test_client()
    sign_in(client, user)
    prefix = "/admin" if area == "admin" else ""
    assert f'href="{prefix}/profile/two-factor"' in client.get(f"{prefix}/profile").get_data(as_text=True)
    page = client.get(f"{prefix}/profile/two-factor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    assert secret == user.totp_secret
    assert re.search(r'<img src="data:image/svg\+xml;charset=utf-8,%3Csvg[^"]+" alt="QR code', html)

    wrong = client.post(f"{prefix}/profile/two-factor", data={"enrol-code": "000000" if code_now(
        user, clock) != "000000" else "111111"})
    assert wrong.status_code == 422 and "This code is not right" in wrong.get_data(as_text=True)
    assert not user.two_factor_enabled

    shown = client.post(f"{prefix}/profile/two-factor", data={"enrol-code": code_now(user, clock)})
    codes = re.findall(r"<li>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</li>", shown.get_data(as_text=True))
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store" and len(codes) == 10
    db.session.refresh(user)
    assert user.two_factor_enabled and len(user.recovery_code_hashes) == 10
    assert actions(user)[-1] == f"{user.kind}.two_factor_enabled"
    after = client.get(f"{prefix}/profile/two-factor")  # still signed in (on the new session version)
    assert after.status_code == 200 and not any(code in after.get_data(as_text=True) for code in codes)
    assert "Recovery codes left: 10." in after.get_data(as_text=True)


def test_an_agent_signs_in_with_a_code_and_lands_on_next(app, clock):
    agent = make_agent("customers")
    enrolled(agent, clock)
    client = app.test_client()
    first = password_step(client, agent, next_path="/admin/customers")
    assert first.status_code == 302 and first.location == "/admin/login/two-factor?next=/admin/customers"
    assert not signed_in_as_agent(client)  # the password alone signs no one in
    assert client.get(first.location).status_code == 200
    done = second_step(client, agent, code_now(agent, clock), next_path="/admin/customers")
    assert done.status_code == 302 and done.location == "/admin/customers"
    assert signed_in_as_agent(client)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "agent.sign_in"))
    assert entry.details == {"method": "totp"} and entry.actor_id == agent.id


def test_next_to_another_site_is_not_followed_after_the_second_step(app, clock):
    agent = make_agent()
    enrolled(agent, clock)
    client = app.test_client()
    password_step(client, agent, next_path="//evil.example/")
    assert second_step(client, agent, code_now(agent, clock), next_path="//evil.example/").location == "/admin/"


def test_a_wrong_code_is_refused_and_audited(app, clock):
    agent = make_agent()
    enrolled(agent, clock)
    client = app.test_client()
    password_step(client, agent)
    wrong = second_step(client, agent, "12345x")
    assert wrong.status_code == 200 and "This code is not right" in wrong.get_data(as_text=True)
    assert not signed_in_as_agent(client)
    assert actions(agent)[-1] == "agent.two_factor_failed"


def test_four_wrong_codes_leave_the_sign_in_open_the_fifth_drops_it(app, clock):
    agent = make_agent()
    enrolled(agent, clock)
    client = app.test_client()
    password_step(client, agent)
    for _ in range(4):
        assert second_step(client, agent, "not-it").status_code == 200
    cookie_before_the_fifth = client.get_cookie("session").value
    fifth = second_step(client, agent, "not-it")
    assert fifth.status_code == 302 and fifth.location == "/admin/login"
    assert second_step(client, agent, code_now(agent, clock)).location == "/admin/login"
    client.set_cookie("session", cookie_before_the_fifth)  # an older cookie does not bring the tries back
    assert second_step(client, agent, code_now(agent, clock)).location == "/admin/login"
    assert not signed_in_as_agent(client)

    clock.advance(seconds=1)  # with the password again, a new second step starts
    password_step(client, agent)
    assert second_step(client, agent, code_now(agent, clock)).location == "/admin/"


def test_four_wrong_codes_then_the_right_one_signs_in(app, clock):
    agent = make_agent()
    enrolled(agent, clock)
    client = app.test_client()
    password_step(client, agent)
    for _ in range(4):
        second_step(client, agent, "not-it")
    assert second_step(client, agent, code_now(agent, clock)).location == "/admin/"


def test_the_second_step_waits_five_minutes(app, clock):
    agent = make_agent()
    enrolled(agent, clock)
    late, in_time = app.test_client(), app.test_client()
    password_step(late, agent)
    password_step(in_time, agent)
    clock.advance(minutes=5)
    assert second_step(in_time, agent, code_now(agent, clock)).location == "/admin/"
    clock.advance(seconds=1)
    assert second_step(late, agent, code_now(agent, clock)).location == "/admin/login"  # expired, not a replay


def test_a_new_password_meanwhile_ends_the_pending_sign_in(app, clock):
    agent = make_agent()
    enrolled(agent, clock)
    client = app.test_client()
    password_step(client, agent)
    agent.end_sessions()
    db.session.commit()
    assert second_step(client, agent, code_now(agent, clock)).location == "/admin/login"


def test_a_customer_signs_in_with_a_recovery_code_once(app, clock):
    customer = make_customer()
    codes = enrolled(customer, clock)
    client = app.test_client()
    password_step(client, customer)
    assert second_step(client, customer, codes[2].upper()).location == "/"
    assert client.get("/profile").status_code == 200
    assert actions(customer)[-2:] == ["customer.recovery_code_used", "customer.sign_in"]

    again = app.test_client()
    password_step(again, customer)
    assert second_step(again, customer, codes[2]).status_code == 200  # spent
    assert actions(customer)[-1] == "customer.two_factor_failed"


def test_a_sign_in_without_two_factor_is_audited_too(app):
    customer = make_customer()
    assert password_step(app.test_client(), customer).location == "/"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.sign_in"))
    assert entry.details == {"method": "password"} and entry.actor_id == customer.id


def test_new_recovery_codes_and_turning_off_through_the_page(app, clock):
    customer = make_customer()
    old = enrolled(customer, clock)
    client = app.test_client()
    password_step(client, customer)
    second_step(client, customer, old[0])
    new = client.post("/profile/two-factor/recovery-codes", data={"regenerate-code": code_now(customer, clock)})
    assert new.status_code == 200 and old[1] not in new.get_data(as_text=True)
    assert len(re.findall(r"<li>[a-z0-9-]{19}</li>", new.get_data(as_text=True))) == 10
    refused = client.post("/profile/two-factor/disable", data={"disable-password": "wrong-pass-1",
                                                              "disable-code": old[1]})
    assert refused.status_code == 422 and "This is not your current password." in refused.get_data(as_text=True)
    off = client.post("/profile/two-factor/disable", data={"disable-password": PASSWORD, "disable-code": old[1]})
    assert off.status_code == 422  # the old codes stopped working
    clock.advance(seconds=30)
    off = client.post("/profile/two-factor/disable", data={"disable-password": PASSWORD,
                                                           "disable-code": code_now(customer, clock)})
    assert off.status_code == 302 and off.location == "/profile/two-factor"
    db.session.refresh(customer)
    assert not customer.two_factor_enabled
    assert actions(customer)[-2:] == ["customer.recovery_codes_regenerated", "customer.two_factor_disabled"]


def test_the_owner_requires_it_and_an_agent_without_it_can_only_set_it_up(app, clock):
    owner, agent = make_agent(is_owner=True), make_agent("billing", "customers")
    owner_client = app.test_client()
    sign_in(owner_client, owner)
    assert 'action="/admin/settings/agents/two-factor"' in owner_client.get("/admin/settings/agents").get_data(
        as_text=True)
    assert owner_client.post("/admin/settings/agents/two-factor", data={"required": "y"}).status_code == 302
    assert settings.get("require_two_factor_agents") is True
    assert db.session.scalar(select(AuditEntry.details).where(AuditEntry.action == "settings.update")) == {
        "keys": ["require_two_factor_agents"]}
    assert owner_client.get("/admin/customers").location == "/admin/profile/two-factor"  # the owner too

    client = app.test_client()
    sign_in(client, agent)
    for path in ("/admin/", "/admin/customers", "/admin/profile"):
        response = client.get(path)
        assert response.status_code == 302 and response.location == "/admin/profile/two-factor", path
    assert client.post("/admin/profile/two-factor/recovery-codes").location == "/admin/profile/two-factor"
    page = client.get("/admin/profile/two-factor")
    assert page.status_code == 200
    db.session.refresh(agent)
    client.post("/admin/profile/two-factor", data={"enrol-code": code_now(agent, clock)})
    assert client.get("/admin/customers").status_code == 200

    clock.advance(seconds=30)
    turn_off = client.post("/admin/profile/two-factor/disable", data={"disable-password": PASSWORD,
                                                                      "disable-code": code_now(agent, clock)})
    assert turn_off.status_code == 422 and "so it stays on" in turn_off.get_data(as_text=True)
    db.session.refresh(agent)
    assert agent.two_factor_enabled
    assert client.post("/admin/logout").status_code == 302


def test_only_an_owner_changes_the_requirement(app):
    agent = make_agent("settings")
    client = app.test_client()
    sign_in(client, agent)
    page = client.get("/admin/settings/agents").get_data(as_text=True)
    assert "/admin/settings/agents/two-factor" not in page
    assert client.post("/admin/settings/agents/two-factor", data={"required": "y"}).status_code == 403
    assert settings.get("require_two_factor_agents") is False


def test_the_requirement_is_only_for_agents(app, clock):
    settings.update({"require_two_factor_agents": True}, ACTOR)
    db.session.commit()
    client = app.test_client()
    sign_in(client, make_customer())
    assert client.get("/profile").status_code == 200


def test_the_second_step_of_one_area_does_not_open_the_other(app, clock):
    customer = make_customer()
    enrolled(customer, clock)
    client = app.test_client()
    password_step(client, customer)
    assert client.post("/admin/login/two-factor", data={"code": code_now(customer, clock)}).location == "/admin/login"
    assert not any(action.endswith(".sign_in") for action in actions(customer))



def wrong_codes(client, agent, clock, count: int) -> None:
    """`count` wrong codes, signing in with the password again after every fifth."""
    for n in range(count):
        if n % 5 == 0:
            clock.advance(seconds=1)
            password_step(client, agent)
        second_step(client, agent, "not-it")


def test_nineteen_wrong_codes_in_a_quarter_hour_leave_the_account_open(app, clock):
    agent = make_agent()
    enrolled(agent, clock)
    client = app.test_client()
    wrong_codes(client, agent, clock, 19)
    assert second_step(client, agent, code_now(agent, clock)).location == "/admin/"


def test_twenty_wrong_codes_lock_the_second_step_for_a_quarter_hour(app, clock):
    """New second steps cannot be started without end by someone who has the password."""
    agent = make_agent()
    enrolled(agent, clock)
    client = app.test_client()
    wrong_codes(client, agent, clock, 20)
    clock.advance(seconds=1)
    assert password_step(client, agent).location.startswith("/admin/login/two-factor")
    locked = second_step(client, agent, code_now(agent, clock))  # even the right code waits now
    assert locked.location == "/admin/login"
    assert "Wait 15 minutes" in client.get("/admin/login").get_data(as_text=True)
    assert not signed_in_as_agent(client)

    clock.advance(minutes=15)  # the first wrong codes leave the window
    password_step(client, agent)
    assert second_step(client, agent, code_now(agent, clock)).location == "/admin/"


@pytest.mark.parametrize("kind", ["agent", "customer"])
def test_a_password_reset_link_does_not_get_round_the_second_factor(app, clock, kind):
    """The reset link proves the mailbox only: it used to sign its holder straight in, code or not."""
    from limonbilling.models import Notification
    from limonbilling.services import accounts

    user = make_agent() if kind == "agent" else make_customer()
    enrolled(user, clock)
    accounts.request_password_reset(kind, user.email)
    db.session.commit()
    [mail] = db.session.scalars(select(Notification).where(Notification.event == "password_reset")).all()
    area = "/admin" if kind == "agent" else ""
    link = re.search(rf"{area}/reset-password/\S+", mail.body_text).group(0)
    client = app.test_client()
    answer = client.post(link, data={"password": "brand-new-pass-4", "confirm": "brand-new-pass-4"})
    assert answer.status_code == 302 and answer.location.startswith(login_path(user) + "/two-factor")
    assert client.get("/admin/" if kind == "agent" else "/profile").status_code == 302  # not signed in yet
    assert second_step(client, user, code_now(user, clock)).status_code == 302
    assert client.get("/admin/" if kind == "agent" else "/profile").status_code == 200
