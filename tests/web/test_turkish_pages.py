"""Every page in Turkish: no text of the catalogue is left in English, and no English sentence was
written into a template without going through the catalogue."""
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from limonbilling.extensions import db
from limonbilling.models import Department
from limonbilling.services import api_tokens, audit, bank_transfer, cancellations, helpdesk, order_statuses, placement
from limonbilling.services import promo_codes as promos

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import AGENT

CATALOGUE = Path(__file__).resolve().parents[2] / "limonbilling" / "translations" / "tr" / "LC_MESSAGES"
ENGLISH_WORDS = re.compile(r"\b(the|your|you|and|with|this|from|there|here|please|which|will|been)\b",
                           re.IGNORECASE)


class TextNodes(HTMLParser):
    """The texts a person reads: element text and the labels of controls, not scripts or styles, nor what is
    marked as written in another language (`lang`, e.g. the English version of a legal text agents edit)."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self._skipping: list[str] = []  # the open elements whose text is not read

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("script", "style", "pre", "iframe") or attributes.get("lang", "tr") != "tr":
            self._skipping.append(tag)
        for name, value in attrs:
            if name in ("aria-label", "title", "placeholder") and value:
                self.texts.append(value)

    def handle_endtag(self, tag):
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data):
        text = " ".join(data.split())
        if text and not self._skipping:
            self.texts.append(text)


def english_of_catalogue() -> set[str]:
    with (CATALOGUE / "messages.po").open("rb") as source:
        catalogue = read_po(source, locale="tr")
    return {message.id for message in catalogue if message.id and isinstance(message.id, str)
            and message.string and message.string != message.id and not re.search(r"%\(|%[sd]", message.id)}


@pytest.fixture
def world(app):
    """One of everything, with Turkish data, so every page has something to show."""
    department = make_department("Teknik Destek", credit_per_request=2)
    customer = make_customer(language="tr", first_name="Şule", last_name="Öztürk")
    credit = make_package("credit", [department], credits=10, price="150.00", name="On Kredi")
    subscription = make_package("subscription", [department], days=30, name="Aylık Abonelik")
    order = placement.place_agent_order(customer, credit, payment_method="manual", actor=AGENT)
    subscriber = make_customer(language="tr", first_name="Çağrı")
    activate(subscriber, subscription)
    request = cancellations.request_cancellation(subscriber, timing="period_end", reason="Gerek kalmadı",
                                                 actor=audit.Actor.of(subscriber))
    db.session.commit()
    ticket = helpdesk.open_conversation(customer, db.session.get(Department, department.id), "ticket",
                                        "Sunucum yanıt vermiyor", "Merhaba")
    helpdesk.open_conversation(customer, db.session.get(Department, department.id), "chat", "", "Merhaba")
    account = bank_transfer.add_account(bank_name="Ziraat Bankası", account_holder="Limon A.Ş.",
                                        iban="TR330006100519786457841326", currency="TRY", actor=AGENT)
    promo = promos.create({"code": "HOSGELDIN", "kind": "percent", "value": "10", "max_uses": 5,
                           "package_ids": []}, AGENT)
    status = order_statuses.save(None, name="Arandı", colour="#336699", counts_as="pending", actor=AGENT)
    agent = make_agent(is_owner=True, language="tr", name="Zeynep Temsilci")
    token, _plain = api_tokens.create_token("Yardım masası", ["read"], audit.Actor.of(agent))
    db.session.commit()
    from limonbilling.models import Notification

    notification = db.session.scalars(db.select(Notification).where(Notification.sensitive.is_(False))).first()
    return {
        "customer": customer, "agent": agent,
        "ids": {"number": order.number, "customer_id": customer.id, "package_id": credit.id,
                "conversation_id": ticket.id, "notification_id": notification.id, "department_id": department.id,
                "token_id": token.id, "request_id": request.id, "account_id": account.id, "agent_id": agent.id,
                "promo_id": promo.id, "status_id": status.id},
    }


def _url(rule, ids) -> str | None:
    values = {}
    for name in rule.arguments:
        if name in ids:
            values[name] = ids[name]
        elif name == "section":
            values[name] = "tickets"
        else:
            return None  # tokens of mailed links, language codes, directions: pages of their own tests
    return rule.build(values, append_unknown=False)[1]


def _pages(app, prefix: str, ids) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(prefix) and "GET" in rule.methods and not rule.endpoint.endswith(
                ("logout", "export", "nestpay_callback", "verify_email", "preview", "_pdf")):
            url = _url(rule, ids)
            if url is not None:
                urls.append(url)
    return sorted(set(urls))


def _problems(client, urls, catalogue) -> dict[str, list[str]]:
    found = {}
    for url in urls:
        response = client.get(url, follow_redirects=True)  # e.g. paying a paid order leads to the order
        assert response.status_code == 200, f"{url}: {response.status_code}"
        parser = TextNodes()
        parser.feed(response.get_data(as_text=True))
        left = sorted({text for text in parser.texts if text in catalogue or ENGLISH_WORDS.search(text)})
        if left:
            found[url] = left
    return found


def test_every_customer_page_is_in_turkish(app, client, world):
    catalogue = english_of_catalogue()
    sign_in(client, world["customer"])
    urls = _pages(app, "portal.", world["ids"])
    assert len(urls) >= 12
    assert _problems(client, urls, catalogue) == {}


def test_every_agent_page_is_in_turkish(app, client, world):
    catalogue = english_of_catalogue()
    sign_in(client, world["agent"])
    urls = _pages(app, "admin.", world["ids"])
    assert len(urls) >= 40
    assert _problems(client, urls, catalogue) == {}


def test_the_signed_out_pages_are_in_turkish(app, client):
    client.post("/language/tr")
    catalogue = english_of_catalogue()
    assert _problems(client, ["/login", "/register", "/forgot-password", "/admin/login", "/admin/forgot-password"],
                     catalogue) == {}
