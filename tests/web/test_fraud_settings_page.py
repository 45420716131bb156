"""Settings → Orders and fraud check: the shared-address rule's points and its number of other customers."""
from limonbilling.extensions import db
from limonbilling.services import settings

from ..factories import make_agent, sign_in

FORM = {"fraud_check_enabled": "y", "fraud_threshold": "60", "fraud_failed_cards_points": "40",
        "fraud_failed_cards_limit": "3", "fraud_many_orders_points": "30", "fraud_many_orders_limit": "3",
        "fraud_many_orders_minutes": "60", "fraud_unverified_email_points": "10", "fraud_price_points": "30",
        "fraud_price_factor": "5", "fraud_ip_failed_customers_points": "25", "fraud_ip_failed_customers_limit": "4"}


def test_the_ip_rule_is_set_on_the_order_settings_page(app, client):
    sign_in(client, make_agent("settings"))
    page = client.get("/admin/settings/orders").get_data(as_text=True)
    assert 'name="fraud_ip_failed_customers_points" required type="number" value="30"' in page
    assert 'name="fraud_ip_failed_customers_limit" required type="number" value="3"' in page
    assert "on a customer's first order these points alone never reach the threshold" in page

    saved = client.post("/admin/settings/orders", data=FORM, follow_redirects=True).get_data(as_text=True)

    assert "are saved" in saved
    db.session.expire_all()
    assert (settings.get("fraud_ip_failed_customers_points"), settings.get("fraud_ip_failed_customers_limit")) == (
        25, 4)


def test_the_number_of_other_customers_must_be_at_least_one(app, client):
    sign_in(client, make_agent("settings"))
    page = client.post("/admin/settings/orders", data={**FORM, "fraud_ip_failed_customers_limit": "0"}).get_data(
        as_text=True)
    assert "are saved" not in page and "Enter a number from 1 to 100." in page
    assert settings.get("fraud_ip_failed_customers_limit") == 3
