"""Security headers: a Content-Security-Policy without inline scripts on every page, no framing."""
import re

from limonbilling.extensions import db
from limonbilling.models import Notification

from ..factories import make_agent, make_customer, make_package, sign_in
from ..payment_support import configure_gateway


def csp(response) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in
            response.headers["Content-Security-Policy"].split("; ") if " " in part}


def test_every_page_carries_the_headers(app, client):
    for path in ("/login", "/register", "/admin/login", "/api/v1/openapi.json"):
        response = client.get(path)
        policy = csp(response)
        assert policy["script-src"] == "'self'" and "unsafe" not in response.headers["Content-Security-Policy"]
        assert policy["frame-ancestors"] == "'none'" and policy["form-action"] == "'self'"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_no_page_has_an_inline_script():
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "templates"
    for template in templates.rglob("*.html"):
        if "sandbox" in template.parts or "emails" in template.parts:
            continue  # the simulator is not the product; e-mails are not pages
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+=", text), template  # no onclick= and the like
        assert 'style="' not in text, template


def test_the_hop_to_the_bank_may_post_to_the_bank_only(app, client):
    gateway = configure_gateway()
    customer = make_customer()
    package = make_package("credit")
    sign_in(client, customer)
    response = client.post(f"/checkout/{package.id}", data={
        "card_number": "4355 0843 5508 4358", "card_expiry": "12/30", "card_cvv": "000", "accept_contracts": "y"})
    assert response.status_code == 200 and "bank-form" in response.get_data(as_text=True)
    assert csp(response)["form-action"] == "'self' http://127.0.0.1:9"
    assert gateway.is_available()


def test_the_mail_preview_allows_inline_styles_but_no_script_and_only_in_our_frame(app, client):
    customer = make_customer()
    row = Notification.query.filter_by(customer_id=customer.id).one()  # the welcome mail: holds a link
    sign_in(client, make_agent("settings"))
    assert client.get(f"/admin/notifications/{row.id}/preview").status_code == 404  # sensitive
    row.sensitive = False
    db.session.commit()
    response = client.get(f"/admin/notifications/{row.id}/preview")
    policy = csp(response)
    assert response.status_code == 200 and "<html" in response.get_data(as_text=True)
    assert policy["style-src"] == "'unsafe-inline'" and policy["script-src"] == "'none'"
    assert policy["frame-ancestors"] == "'self'" and response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Content-Security-Policy"].endswith("; sandbox")


def test_nul_characters_are_refused_at_the_door(app, client):
    """PostgreSQL cannot store a NUL character: any field holding one is a 400, never a 500."""
    assert client.post("/login", data={"email": "a\x00@example.com", "password": "x"}).status_code == 400
    assert client.get("/admin/login?next=%00").status_code == 400
    assert client.post("/api/v1/usage", json={"reference": "a\x00"}).status_code == 400
    assert client.post("/api/v1/usage", json={"reference": "a\x00"}).json["error"]["code"] == "bad_request"
