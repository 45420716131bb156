"""Demo data for `flask billing demo` and `make run`; running it again adds nothing twice."""
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import Agent, Announcement, Customer, Department, Package
from . import (
    accounts,
    affiliates,
    announcements,
    audit,
    bank_transfer,
    customers,
    departments,
    packages,
    promo_codes,
    settings,
)

DEMO_PASSWORD = "demo-pass-1"
OWNER_EMAIL = "owner@example.com"
SIGN_INS = (
    ("agent (owner)", "/admin/login", OWNER_EMAIL),
    ("customer (individual)", "/login", "ayse@example.com"),
    ("customer (corporate)", "/login", "mehmet@example.com"),
)

DEPARTMENTS = (
    {"name": "Technical Support", "credit_per_request": 2},
    {"name": "Server Management", "credit_per_request": 5},
)

CUSTOMERS = (
    {
        "account_type": "individual", "first_name": "Ayşe", "last_name": "Yılmaz",
        "email": "ayse@example.com", "phone": "0532 123 45 67", "language": "tr",
    },
    {
        "account_type": "corporate", "first_name": "Mehmet", "last_name": "Öztürk",
        "email": "mehmet@example.com", "phone": "+90 212 555 12 34", "language": "en",
        "company_name": "Öztürk Yazılım A.Ş.", "tax_number": "4540536920", "tax_office": "Kadıköy",
        "billing_address": "Caferağa Mah. Moda Cad. No: 1, Kadıköy / İstanbul",
    },
)

PACKAGES = (
    {"name": "10 Credits", "type": "credit", "price": "150.00", "credits": 10,
     "description": "Ten credits: a new ticket costs 2, a server request 5."},
    {"name": "50 Credits", "type": "credit", "price": "600.00", "credits": 50,
     "description": "Fifty credits at a better price per credit."},
    {"name": "Monthly VIP", "type": "subscription", "price": "500.00", "days": 30,
     "description": "Unlimited tickets and chats for 30 days."},
)


DEMO_PROMO_CODE = "WELCOME10"
# Bank transfer is offered only once a bank account exists (a published example IBAN, no real account).
DEMO_BANK_ACCOUNT = {"bank_name": "Ziraat Bankası", "account_holder": "Limon Yazılım A.Ş.",
                     "iban": "TR330006100519786457841326", "currency": "TRY"}
DEMO_AFFILIATE = {"name": "Partner Blog", "code": "PARTNER", "commission_percent": 10}
# One announcement, written in each language (customers read the one of their language).
DEMO_ANNOUNCEMENT = (
    {"language": "en", "title": "Welcome to VIP support",
     "body": "Buy credits or a monthly subscription under Packages.\n"
             "A new ticket or chat costs credits; replies are free."},
    {"language": "tr", "title": "VIP desteğe hoş geldiniz",
     "body": "Paketler sayfasından kredi ya da aylık abonelik alabilirsiniz.\nYeni bir talep ya da sohbet kredi "
             "harcar; yanıtlar ücretsizdir."},
)


def load_demo_data() -> list[str]:
    """Create what is missing of the demo set; returns a line for each record created."""
    actor = audit.Actor.system("demo")
    created = []
    if db.session.scalar(select(Agent).where(Agent.email == OWNER_EMAIL)) is None:
        accounts.create_owner(OWNER_EMAIL, DEMO_PASSWORD, name="Demo Owner")
        created.append(f"agent {OWNER_EMAIL}")
    for values in DEPARTMENTS:
        if db.session.scalar(select(Department).where(Department.name == values["name"])) is None:
            departments.create_department(active=True, actor=actor, **values)
            created.append(f"department {values['name']}")
    department_ids = [d.id for d in db.session.scalars(
        select(Department).where(Department.name.in_([d["name"] for d in DEPARTMENTS]))
    )]
    for values in PACKAGES:
        if db.session.scalar(select(Package).where(Package.name == values["name"])) is None:
            packages.create_package(
                {**values, "currency": "TRY", "department_ids": department_ids, "on_sale": True}, actor
            )
            created.append(f"package {values['name']}")
    for values in CUSTOMERS:
        if db.session.scalar(select(Customer).where(Customer.email == values["email"])) is None:
            customer = customers.register_customer(values, DEMO_PASSWORD, actor=actor)
            customer.email_verified_at = now()
            created.append(f"customer {values['email']}")
    if promo_codes.find(DEMO_PROMO_CODE) is None:
        promo_codes.create({"code": DEMO_PROMO_CODE, "kind": "percent", "value": "10", "max_uses": 100}, actor)
        created.append(f"promo code {DEMO_PROMO_CODE} (10% off)")
    if affiliates.find(DEMO_AFFILIATE["code"]) is None:
        affiliates.create(DEMO_AFFILIATE, actor)
        created.append(f"affiliate {DEMO_AFFILIATE['code']} (link /?ref={DEMO_AFFILIATE['code']})")
    if db.session.scalar(select(Announcement.id).limit(1)) is None:
        for values in DEMO_ANNOUNCEMENT:
            announcements.create({**values, "publish": True}, None, actor)
        created.append("announcement (in English and Turkish)")
    if not bank_transfer.all_accounts():
        bank_transfer.add_account(**DEMO_BANK_ACCOUNT, actor=actor)
        created.append(f"bank account {DEMO_BANK_ACCOUNT['bank_name']} ({DEMO_BANK_ACCOUNT['currency']})")
    return created


def use_simulator(base_url: str) -> bool:
    """Point the card gateway at the local NestPay simulator with the published test merchant.

    Only when no gateway is configured yet, so a real bank set up by hand is never overwritten.
    """
    from ..sandbox import TEST_MERCHANT

    if settings.get("nestpay_client_id"):
        return False
    settings.update({
        "nestpay_enabled": True,
        "nestpay_bank": "asseco_test",
        "nestpay_gate_url": f"{base_url}/fim/est3Dgate",
        "nestpay_api_url": f"{base_url}/fim/api",
        "nestpay_client_id": TEST_MERCHANT["client_id"],
        "nestpay_store_key": TEST_MERCHANT["store_key"],
        "nestpay_api_user": TEST_MERCHANT["api_user"],
        "nestpay_api_password": TEST_MERCHANT["api_password"],
        "nestpay_store_type": "3d_pay",
        "nestpay_test_mode": True,
    }, audit.Actor.system("demo"))
    return True


def use_debug_smtp(host: str, port: int) -> bool:
    """Send e-mail to a local debugging SMTP server that prints each mail (`make run` starts one).

    Only when no SMTP server is configured yet; agents and the demo's E-mail address get the mails too.
    """
    if settings.get("smtp_host"):
        return False
    settings.update({
        "smtp_host": host, "smtp_port": port, "smtp_security": "none",
        "smtp_from_address": "billing@example.com",
        "notification_email": settings.get("notification_email") or "support@example.com",
    }, audit.Actor.system("demo"))
    return True
