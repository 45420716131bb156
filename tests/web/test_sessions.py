"""Sessions end when they must: two browsers (two test clients) signed in to one account.

The session lives in a signed cookie, so the server cannot forget one; instead the
account's session version is part of every session and moving it on ends them all.
"""
from limonbilling.extensions import db
from limonbilling.models import AuditEntry
from limonbilling.services import accounts, audit

from ..factories import PASSWORD, make_agent, make_customer, sign_in

NEW_PASSWORD = "another-pass-2"


def two_browsers(app, user):
    first, second = app.test_client(), app.test_client()
    sign_in(first, user)
    sign_in(second, user)
    return first, second


def signed_in(client, kind: str) -> bool:
    response = client.get("/admin/" if kind == "agent" else "/profile")
    return response.status_code == 200


def test_a_deactivated_agent_loses_the_session_they_already_hold(app):
    owner = make_agent(is_owner=True)
    agent = make_agent("billing")
    owner_client, agent_client = app.test_client(), app.test_client()
    sign_in(owner_client, owner)
    sign_in(agent_client, agent)
    assert signed_in(agent_client, "agent")

    response = owner_client.post(f"/admin/settings/agents/{agent.id}/edit", data={"billing": "y"})
    assert response.status_code == 302

    assert not signed_in(agent_client, "agent")
    assert agent_client.get("/admin/billing/orders").status_code == 302  # to the sign-in page
    assert agent_client.post("/admin/login", data={"email": agent.email, "password": PASSWORD}).status_code == 200


def test_an_agent_switched_off_in_the_database_is_refused_even_with_the_same_session_version(app):
    """Flask-Login checks `is_active` only when signing in; the loader checks it on every request."""
    agent = make_agent("billing")
    client = app.test_client()
    sign_in(client, agent)
    agent.active = False  # as a direct database change would, without moving the version
    db.session.commit()
    assert not signed_in(client, "agent")


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app):
    for user, kind in ((make_agent(), "agent"), (make_customer(), "customer")):
        here, elsewhere = two_browsers(app, user)
        path = "/admin/profile" if kind == "agent" else "/profile/password"
        prefix = "" if kind == "agent" else "pw-"
        response = here.post(path, data={f"{prefix}current_password": PASSWORD,
                                         f"{prefix}new_password": NEW_PASSWORD})
        assert response.status_code == 302, kind
        assert signed_in(here, kind), kind
        assert not signed_in(elsewhere, kind), kind


def test_a_refused_password_change_ends_nothing(app):
    customer = make_customer()
    here, elsewhere = two_browsers(app, customer)
    here.post("/profile/password", data={"pw-current_password": "wrong-password-9",
                                         "pw-new_password": NEW_PASSWORD})
    assert signed_in(here, "customer") and signed_in(elsewhere, "customer")


def test_signing_out_ends_every_session_of_the_account(app):
    """A copied session cookie must not outlive the sign-out."""
    for user, kind in ((make_agent(), "agent"), (make_customer(), "customer")):
        here, elsewhere = two_browsers(app, user)
        stolen = app.test_client()
        stolen.set_cookie("session", here.get_cookie("session").value)
        assert signed_in(stolen, kind), kind
        here.post("/admin/logout" if kind == "agent" else "/logout")
        assert not signed_in(here, kind) and not signed_in(elsewhere, kind) and not signed_in(stolen, kind), kind


def test_sign_out_everywhere_keeps_this_browser_signed_in(app):
    for user, kind in ((make_agent(), "agent"), (make_customer(), "customer")):
        here, elsewhere = two_browsers(app, user)
        response = here.post("/admin/profile/sign-out-everywhere" if kind == "agent"
                             else "/profile/sign-out-everywhere")
        assert response.status_code == 302, kind
        assert signed_in(here, kind), kind
        assert not signed_in(elsewhere, kind), kind
        assert db.session.query(AuditEntry).filter_by(action=f"{kind}.sessions_ended").count() == 1


def test_a_session_from_before_the_version_existed_is_not_accepted(app):
    """Sessions written before session versions carried `agent:<id>` only: they end too."""
    agent = make_agent()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"agent:{agent.id}"
        session["_fresh"] = True
    assert not signed_in(client, "agent")


def test_the_service_moves_the_version_on_deactivation_only(app):
    owner = make_agent(is_owner=True)
    agent = make_agent("billing")
    version = agent.session_version
    actor = audit.Actor.of(owner)
    accounts.update_agent(agent, permissions=["billing", "support"], is_owner=False, active=True, actor=actor)
    assert agent.session_version == version  # a permission change is read on the next request anyway
    accounts.update_agent(agent, permissions=["billing"], is_owner=False, active=False, actor=actor)
    assert agent.session_version == version + 1
