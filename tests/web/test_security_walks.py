"""Walks of the URL map: every state-changing form needs its CSRF token, and a customer reaches only
their own orders, invoices, tickets, chats and ledger, whatever ids they put in the address."""
import re

from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Department
from limonbilling.services import bank_transfer, helpdesk, placement

from ..factories import PASSWORD, make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import AGENT
from ..urls import sample_url

# Posts that are not forms of ours: the bank's callback is verified by its hash, the API by its token.
NOT_FORMS = {"portal.nestpay_callback"}


def signed_in_with_csrf(client, path: str, email: str) -> None:
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)
    response = client.post(path, data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert response.status_code == 302, "sign-in failed"


def posts(app, prefix: str):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(prefix) and "POST" in rule.methods and rule.endpoint not in NOT_FORMS:
            yield rule


def audit_count() -> int:
    """Audit entries other than sign-ins: the walk signs in, and must change nothing else."""
    return db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action.not_like("%.sign_in")))


def test_every_form_post_without_its_token_is_refused(app, make_app):
    protected = make_app(WTF_CSRF_ENABLED=True)
    agent_email, customer_email = make_agent(is_owner=True).email, make_customer().email
    before = audit_count()
    db.session.rollback()  # end this test's read: on SQLite it would hold the other app's writes back
    anonymous = protected.test_client()
    for rule in [*posts(protected, "portal."), *posts(protected, "admin.")]:
        response = anonymous.post(sample_url(rule), data={"email": customer_email, "password": PASSWORD})
        assert response.status_code == 400 and "The form has expired" in response.get_data(as_text=True), \
            rule.endpoint
    for prefix, path, email in (("admin.", "/admin/login", agent_email), ("portal.", "/login", customer_email)):
        client = protected.test_client()
        signed_in_with_csrf(client, path, email)
        rules = sorted(posts(protected, prefix), key=lambda rule: rule.endpoint.endswith("logout"))
        assert len(rules) > (40 if prefix == "admin." else 8)
        for rule in rules:
            response = client.post(sample_url(rule), data={"enabled": "y", "name": "x"})
            assert response.status_code == 400, f"{rule.endpoint} accepted a post without its CSRF token"
    db.session.expire_all()
    assert audit_count() == before  # nothing changed


def test_the_exempt_posts_are_exactly_the_bank_callback_and_the_api(app_without_database):
    from limonbilling.extensions import csrf

    views = app_without_database.view_functions
    exempt = {rule.endpoint for rule in app_without_database.url_map.iter_rules() if "POST" in rule.methods and (
        rule.endpoint.startswith("api.") or f"{views[rule.endpoint].__module__}."
        f"{views[rule.endpoint].__name__}" in csrf._exempt_views)}
    assert {endpoint for endpoint in exempt if not endpoint.startswith("api.")} == NOT_FORMS


def _someone_elses_things():
    department = make_department("Teknik Destek", credit_per_request=1)
    other = make_customer(email="other@example.com")
    paid = placement.place_agent_order(other, make_package("credit", [department]), payment_method="manual",
                                       actor=AGENT)
    db.session.commit()
    bank_transfer.add_account(bank_name="B", account_holder="H", iban="TR330006100519786457841326", currency="TRY",
                              actor=AGENT)
    waiting = placement.place_agent_order(make_customer(email="third@example.com"), make_package("credit"),
                                  payment_method="bank_transfer", actor=AGENT)
    ticket = helpdesk.open_conversation(other, db.session.get(Department, department.id), "ticket", "Gizli", "…")
    chat = helpdesk.open_conversation(other, db.session.get(Department, department.id), "chat", "", "Gizli sohbet")
    db.session.commit()
    return {"number": [paid.number, waiting.number], "conversation_id": [ticket.id, chat.id]}


def test_a_customer_cannot_reach_another_customers_records(app, client):
    theirs = _someone_elses_things()
    sign_in(client, make_customer(email="me@example.com"))
    before = audit_count()
    checked = 0
    for rule in app.url_map.iter_rules():
        arguments = set(rule.arguments)
        if not rule.endpoint.startswith("portal.") or not arguments & {"number", "conversation_id"}:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for index in range(2):
                values = {name: theirs[name][index] for name in arguments & set(theirs)}
                if "section" in arguments:
                    values["section"] = ("tickets", "chats")[index]
                url = rule.build(values, append_unknown=False)[1]
                response = client.open(url, method=method, data={"body": "x", "email": "me@example.com",
                                                                 "phone": "0532 123 45 67"})
                page = response.get_data(as_text=True).replace(url, "")  # the language switch echoes it
                assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
                assert "Gizli" not in page and theirs["number"][index] not in page
                checked += 1
    assert checked >= 10
    db.session.expire_all()
    assert audit_count() == before  # nothing happened to their records
    usage = client.get("/usage").get_data(as_text=True)
    assert "Gizli" not in usage and theirs["number"][0] not in usage
