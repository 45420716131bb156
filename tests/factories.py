"""Small functions that make valid records; override only what a test is about."""
import itertools

from limonbilling.extensions import db
from limonbilling.models import Agent, Customer, Department
from limonbilling.services import audit, customers

PASSWORD = "secret-pass-1"
_sequence = itertools.count(1)


def make_transfer_account(currency: str = "TRY"):
    """A bank account to pay into, as bank-transfer orders need one in their currency (once per currency)."""
    from limonbilling.services import bank_transfer

    existing = bank_transfer.accounts_for(currency)
    if existing:
        return existing[0]
    iban = {"TRY": "TR330006100519786457841326", "USD": "TR060006100519786457841327",
            "EUR": "TR760006100519786457841328"}[currency]
    account = bank_transfer.add_account(bank_name="Ziraat Bankası", account_holder="Limon Yazılım A.Ş.",
                                        iban=iban, currency=currency, actor=audit.Actor.system("test"))
    db.session.commit()
    return account


def make_customer(**overrides) -> Customer:
    n = next(_sequence)
    values = {
        "account_type": "individual",
        "first_name": "Ayşe",
        "last_name": "Yılmaz",
        "email": f"customer{n}@example.com",
        "phone": "0532 123 45 67",
    }
    values.update(overrides)
    customer = customers.register_customer(values, PASSWORD, actor=audit.Actor.system("test"))
    db.session.commit()
    return customer


def make_corporate_customer(**overrides) -> Customer:
    values = {
        "account_type": "corporate",
        "company_name": "Öztürk Yazılım A.Ş.",
        "tax_number": "4540536920",
        "tax_office": "Kadıköy",
        "billing_address": "Moda Cad. No: 1, Kadıköy / İstanbul",
    }
    values.update(overrides)
    return make_customer(**values)


def make_agent(*permissions: str, is_owner: bool = False, **overrides) -> Agent:
    n = next(_sequence)
    agent = Agent(
        name=overrides.pop("name", f"Agent {n}"),
        email=overrides.pop("email", f"agent{n}@example.com"),
        is_owner=is_owner,
        active=overrides.pop("active", True),
        **{f"can_{p}": True for p in permissions},
        **overrides,
    )
    agent.set_password(PASSWORD)
    db.session.add(agent)
    db.session.commit()
    return agent


def make_department(name: str | None = None, credit_per_request: int = 2, active: bool = True) -> Department:
    department = Department(
        name=name or f"Department {next(_sequence)}", credit_per_request=credit_per_request, active=active
    )
    db.session.add(department)
    db.session.commit()
    return department


def sign_in(client, user) -> None:
    """Sign in through the real sign-in form of the user's area."""
    path = "/admin/login" if user.kind == "agent" else "/login"
    response = client.post(path, data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.data


def make_package(
    type: str = "credit", departments=(), *, credits: int | None = None, days: int | None = None,
    price: str = "150.00", currency: str = "TRY", on_sale: bool = True, name: str | None = None,
):
    """A package over the given departments (one new department when none is given)."""
    from limonbilling.services import packages

    departments = list(departments) or [make_department()]
    values = {
        "name": name or f"{type.title()} package {next(_sequence)}",
        "type": type,
        "price": price,
        "currency": currency,
        "credits": credits if credits is not None else (10 if type == "credit" else None),
        "days": days if days is not None else (30 if type == "subscription" else None),
        "department_ids": [d.id for d in departments],
        "on_sale": on_sale,
    }
    package = packages.create_package(values, audit.Actor.system("test"))
    db.session.commit()
    return package


def activate(customer, package, **kwargs):
    """Activate a package as a test purchase and commit."""
    from limonbilling.services import entitlements

    grant = entitlements.activate_package(
        customer, package, source=kwargs.pop("source", "test"), actor=audit.Actor.system("test"), **kwargs
    )
    db.session.commit()
    return grant


def make_activation_request(customer, amount: str = "120,00"):
    """The customer's activation form (a transfer they say they sent), signed in, waiting for an agent."""
    from datetime import date

    from limonbilling.services import activation_requests

    request = activation_requests.submit({
        "first_name": customer.first_name, "last_name": customer.last_name, "email": customer.email,
        "phone": customer.phone, "amount": amount, "currency": "TRY", "paid_on": date(2026, 3, 1),
        "package_id": None, "note": ""}, signed_in=customer, language="en", ip=None)
    db.session.commit()
    return request
