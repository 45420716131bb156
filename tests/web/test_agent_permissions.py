"""Only an owner changes what agents may do, their own permissions included.

An agent with `settings` used to grant themselves billing, customers and support.
These walk every kind of acting agent against every kind of target and change.
"""
import itertools

import pytest

from limonbilling.extensions import db
from limonbilling.models import Agent, Permission
from limonbilling.services import ServiceError, accounts, audit

from ..factories import make_agent, sign_in

ACTING = {
    "owner": lambda: make_agent(is_owner=True),
    "settings": lambda: make_agent("settings"),
    "everything but owner": lambda: make_agent(*Permission),
    "billing": lambda: make_agent("billing"),
}
TARGETS = ("self", "agent", "owner")
CHANGES = [
    *({"permissions": [permission]} for permission in Permission),
    {"permissions": list(Permission)},
    {"permissions": []},
    {"is_owner": True},
    {"is_owner": False},
    {"active": False},
]


def target_for(kind: str, acting: Agent) -> Agent:
    if kind == "self":
        return acting
    return make_agent(is_owner=True) if kind == "owner" else make_agent("support")


def state(agent: Agent) -> tuple:
    db.session.refresh(agent)
    return agent.permissions, agent.is_owner, agent.active, agent.session_version


def request_for(target: Agent, change: dict) -> dict:
    current = {"permissions": [p for p in Permission if getattr(target, f"can_{p}")],
               "is_owner": target.is_owner, "active": target.active}
    return {**current, **change}


@pytest.mark.parametrize("acting_kind", ACTING)
def test_every_combination_through_the_service(app, acting_kind):
    for target_kind, change in itertools.product(TARGETS, CHANGES):
        make_agent(is_owner=True)  # a second owner, so "the last owner" never decides
        acting = ACTING[acting_kind]()
        target = target_for(target_kind, acting)
        before = state(target)
        wanted = request_for(target, change)
        try:
            accounts.update_agent(target, **wanted, actor=audit.Actor.of(acting))
            db.session.commit()
            changed = True
        except ServiceError as refused:
            db.session.rollback()
            assert refused.code == "owner_only", (acting_kind, target_kind, change)
            changed = False
        case = (acting_kind, target_kind, change)
        assert changed == (acting_kind == "owner"), case
        if not changed:
            assert state(target) == before, case


@pytest.mark.parametrize("acting_kind", ACTING)
def test_creating_an_agent_with_any_permission_needs_an_owner(app, acting_kind):
    acting = ACTING[acting_kind]()
    for number, permissions in enumerate([[], ["billing"], list(Permission)]):
        try:
            accounts.create_agent(name="New", email=f"new{number}@example.com", password="new-pass-123",
                                  permissions=permissions, is_owner=False, actor=audit.Actor.of(acting))
            db.session.commit()
            created = True
        except ServiceError as refused:
            db.session.rollback()
            assert refused.code == "owner_only"
            created = False
        assert created == (acting_kind == "owner"), (acting_kind, permissions)


def test_a_settings_agent_cannot_grant_themselves_more_through_the_page(app):
    agent = make_agent("settings")
    client = app.test_client()
    sign_in(client, agent)
    response = client.post(f"/admin/settings/agents/{agent.id}/edit", data={
        "can_settings": "y", "can_billing": "y", "can_customers": "y", "can_support": "y", "active": "y"})
    assert response.status_code == 403
    assert state(agent)[0] == ["settings"]
    assert client.get(f"/admin/settings/agents/{agent.id}/edit").status_code == 403
    assert client.post("/admin/settings/agents/new", data={
        "name": "Friend", "email": "friend@example.com", "password": "friend-pass-12",
        "can_billing": "y"}).status_code == 403
    assert db.session.scalar(db.select(Agent).where(Agent.email == "friend@example.com")) is None
    listing = client.get("/admin/settings/agents")
    assert listing.status_code == 200 and "New agent" not in listing.data.decode()


def test_an_owner_changes_their_own_permissions_and_others(app):
    owner, other = make_agent(is_owner=True), make_agent("support")
    client = app.test_client()
    sign_in(client, owner)
    response = client.post(f"/admin/settings/agents/{other.id}/edit", data={"can_billing": "y", "active": "y"})
    assert response.status_code == 302 and state(other)[0] == ["billing"]


def test_a_former_owner_session_cannot_use_the_owner_rule(app):
    """The rule reads the acting agent from the database, not from what the caller claims."""
    former = make_agent("settings")
    target = make_agent("support")
    with pytest.raises(ServiceError):
        accounts.update_agent(target, permissions=list(Permission), is_owner=False, active=True,
                              actor=audit.Actor("agent", former.id, former.email))
    with pytest.raises(ServiceError):
        accounts.update_agent(target, permissions=list(Permission), is_owner=False, active=True,
                              actor=audit.Actor("customer", 1, "someone@example.com"))
