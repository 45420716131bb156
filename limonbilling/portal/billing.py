"""The customer's package pages (only while the Paid VIP Support System is on)."""
from flask import render_template

from ..auth import current_customer, vip_required
from ..services import entitlements
from ..services import packages as catalog
from . import bp


@bp.route("/packages")
@vip_required
def packages():
    """On-sale packages by type, each with what buying it would do for this customer (rules 1–4)."""
    customer = current_customer()
    offers = [(package, entitlements.preview_purchase(customer, package)) for package in catalog.on_sale()]
    return render_template(
        "portal/packages.html",
        entitlement=entitlements.entitlement(customer),
        credit_offers=[offer for offer in offers if offer[0].type == "credit"],
        subscription_offers=[offer for offer in offers if offer[0].type == "subscription"],
    )
