"""End-to-end fixtures: the app and the NestPay simulator served on loopback, driven by headless Chromium.

Playwright drives the Debian `chromium` package (/usr/bin/chromium, or
CHROMIUM_PATH). Without a browser the tests skip with the reason, unless
REQUIRE_BROWSER=1 (CI), which turns that into a failure. Each test gets its
own SQLite database file; screenshots go to test-artifacts/screenshots/.
"""
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from limonbilling import create_app
from limonbilling.extensions import db
from limonbilling.sandbox import TEST_MERCHANT, create_simulator
from limonbilling.services import audit, bank_transfer, settings

from ..factories import make_agent, make_department, make_package
from ..http.servers import LiveServer

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def _chromium() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        reason = "no headless browser: install Debian's chromium (apt-get install chromium) and playwright"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@dataclass
class Shop:
    url: str
    bank_url: str
    app: object
    agent_email: str

    def query(self, statement):
        """Read the database as it is now (no transaction is kept open: the server writes meanwhile)."""
        with self.app.app_context():
            try:
                return db.session.execute(statement).all()
            finally:
                db.session.remove()


@pytest.fixture
def shop(tmp_path):
    """The app (CSRF on) and the simulator on loopback, with packages, a bank account and an owner agent."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'e2e.db'}", "WTF_CSRF_ENABLED": True,
                      "OUTBOX_SEND_AFTER_COMMIT": False, "ATTACHMENTS_FOLDER": str(tmp_path / "attachments")})
    with LiveServer(create_simulator()) as bank, LiveServer(app) as server:
        with app.app_context():
            db.create_all()
            actor = audit.Actor.system("e2e")
            settings.update({
                "nestpay_enabled": True, "nestpay_gate_url": f"{bank.url}/fim/est3Dgate",
                "nestpay_api_url": f"{bank.url}/fim/api", "nestpay_client_id": TEST_MERCHANT["client_id"],
                "nestpay_store_key": TEST_MERCHANT["store_key"], "nestpay_api_user": TEST_MERCHANT["api_user"],
                "nestpay_api_password": TEST_MERCHANT["api_password"], "company_name": "Limon Destek",
            }, actor)
            bank_transfer.add_account(bank_name="Ziraat Bankası", account_holder="Limon Yazılım A.Ş.",
                                      iban="TR330006100519786457841326", currency="TRY", actor=actor)
            support = make_department("Teknik Destek", credit_per_request=2)
            servers = make_department("Sunucu Yönetimi", credit_per_request=5)
            make_package("credit", [support, servers], credits=10, price="150.00", name="10 Kredi")
            make_package("subscription", [support, servers], days=30, price="900.00", name="Aylık VIP")
            agent = make_agent(is_owner=True, name="Zeynep Temsilci")
            db.session.commit()
            shop = Shop(server.url, bank.url, app, agent.email)
            db.session.remove()
        yield shop


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (separate cookies): a customer and an agent side by side."""
    contexts = []

    def open_page(width: int = 1280, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


