"""Every admin route needs a signed-in agent and its declared permission; the portal needs a customer."""

import pytest

from limonbilling.auth import OWNER, SIGNED_IN
from limonbilling.models import Permission

from ..factories import make_agent, make_customer, sign_in
from ..urls import sample_url


def _admin_rules(app):
    """Admin rules with their methods; sign-out comes last so it does not end the walk early."""
    rules = sorted(app.url_map.iter_rules(), key=lambda rule: rule.endpoint == "admin.logout")
    for rule in rules:
        if rule.endpoint.startswith("admin."):
            view = app.view_functions[rule.endpoint]
            if getattr(view, "is_public", False):
                continue
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, view, method



def test_every_admin_view_declares_what_it_needs(app_without_database):
    rules = list(_admin_rules(app_without_database))
    assert rules
    allowed = set(Permission) | {OWNER, SIGNED_IN}
    for rule, view, _method in rules:
        assert getattr(view, "required_permission", None) in allowed, f"{rule.endpoint} declares no permission"


def test_no_admin_route_is_reachable_without_signing_in(app_without_database):
    client = app_without_database.test_client()
    for rule, _view, method in _admin_rules(app_without_database):
        response = client.open(sample_url(rule), method=method)
        assert response.status_code == 302, rule.endpoint
        assert response.location.startswith("/admin/login"), rule.endpoint


def test_no_admin_route_is_reachable_by_a_customer(app, client):
    sign_in(client, make_customer())
    for rule, _view, method in _admin_rules(app):
        response = client.open(sample_url(rule), method=method)
        assert response.status_code == 302 and response.location.startswith("/admin/login"), rule.endpoint


@pytest.mark.parametrize("held", [(), *[(p,) for p in Permission]])
def test_each_admin_route_needs_its_permission(app, held):
    agent = make_agent(*held)
    client = app.test_client()
    sign_in(client, agent)
    for rule, view, method in _admin_rules(app):
        needed = view.required_permission
        response = client.open(sample_url(rule), method=method)
        if needed == SIGNED_IN or needed in held:
            assert response.status_code != 403, rule.endpoint
        else:
            assert response.status_code == 403, f"{rule.endpoint} open to an agent with {held}"


def test_owner_reaches_every_admin_route(app, client):
    sign_in(client, make_agent(is_owner=True))
    for rule, _view, method in _admin_rules(app):
        assert client.open(sample_url(rule), method=method).status_code != 403, rule.endpoint


def test_a_disabled_agent_cannot_sign_in(client):
    agent = make_agent("billing", active=False)
    response = client.post("/admin/login", data={"email": agent.email, "password": "secret-pass-1"})
    assert response.status_code == 200
    assert b"wrong" in response.data


def test_portal_pages_need_a_customer(app, client):
    sign_in(client, make_agent(is_owner=True))
    for path in ("/", "/profile"):
        response = client.get(path)
        assert response.status_code == 302 and response.location.startswith("/login"), path
