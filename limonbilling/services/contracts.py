"""The texts Turkish law asks of a distance sale (Law 6502, the Distance Contracts Regulation; KVKK Article 10).

Agents write the pre-information form, the distance sales contract and the privacy notice in each language on
Settings → Legal texts, with placeholders such as `{buyer}`; a placeholder this module does not know is refused
when saving. At checkout the buyer reads both contracts filled in for the purchase and must accept them
(placement.place_customer_order refuses otherwise); `freeze` keeps the filled-in texts with the order, with
the moment and the IP address, so a later edit of the settings never changes what a buyer accepted.

Placeholders are replaced by a plain search, never by str.format, so a text cannot reach into the objects.
"""
import re
from dataclasses import dataclass
from datetime import datetime

from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..clock import local_day, now
from ..formatting import format_money
from ..models import Customer, Language, LegalText, Order, OrderContract, Package
from . import ValidationFailed, audit, settings

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TEXT_LENGTH = 50_000  # characters of one text
WITHDRAWAL_DAYS = 14  # Distance Contracts Regulation, Article 9

# Every placeholder with what it becomes, as Settings → Legal texts documents them.
SELLER_PLACEHOLDERS = {
    "seller": _l("the company name of Settings → General"),
    "seller_address": _l("the seller's address of Settings → Invoices"),
    "seller_email": _l("the e-mail address of Settings → General"),
}
PURCHASE_PLACEHOLDERS = {
    **SELLER_PLACEHOLDERS,
    "buyer": _l("the buyer's name, or the company name of a corporate account"),
    "buyer_email": _l("the buyer's e-mail address"),
    "buyer_phone": _l("the buyer's phone"),
    "buyer_address": _l("the buyer's billing address (corporate accounts)"),
    "package": _l("the package bought"),
    "price": _l("the total price, VAT included"),
    "vat": _l("the VAT in the price"),
    "date": _l("the day of the purchase"),
    "order_number": _l("the order number"),
    "withdrawal": _l("the right of withdrawal: 14 days from the contract, and how to use it"),
    "withdrawal_exception": _l("its exception: no withdrawal once a service performed at once has begun with "
                               "the buyer's consent"),
}
PLACEHOLDERS = {LegalText.PRE_INFORMATION: PURCHASE_PLACEHOLDERS, LegalText.DISTANCE_SALES: PURCHASE_PLACEHOLDERS,
                LegalText.PRIVACY: SELLER_PLACEHOLDERS}


def text(which: str, language: str) -> str:
    """One legal text as the agents wrote it (placeholders unfilled)."""
    return settings.get(settings.legal_text_key(which, language))


def all_texts() -> dict[str, str]:
    """Every legal text by its setting key, as Settings → Legal texts edits them."""
    return {settings.legal_text_key(which, language): text(which, language)
            for which in LegalText for language in Language}


def unknown_placeholders(which: str, body: str) -> list[str]:
    """The `{…}` in `body` that the text `which` does not fill in, each once, in their order."""
    return list(dict.fromkeys(f"{{{name}}}" for name in PLACEHOLDER.findall(body) if name not in PLACEHOLDERS[which]))


def update_texts(values: dict[str, str], actor: audit.Actor) -> list[str]:
    """Settings → Legal texts: each text (by its setting key) is required, at most TEXT_LENGTH characters, and
    uses only the placeholders of its kind. Returns the keys that changed."""
    errors: dict[str, list[str]] = {}
    clean = {}
    for which in LegalText:
        for language in Language:
            key = settings.legal_text_key(which, language)
            if key not in values:
                continue
            body = (values[key] or "").replace("\r\n", "\n").strip()
            unknown = unknown_placeholders(which, body)
            if not body:
                errors[key] = [_("Write the text; it cannot be empty.")]
            elif len(body) > TEXT_LENGTH:
                errors[key] = [_("Write at most %(max)d characters.", max=TEXT_LENGTH)]
            elif unknown:
                errors[key] = [_("Unknown placeholder %(names)s: use only those listed on this page, or write the "
                                 "words without braces.", names=", ".join(unknown))]
            clean[key] = body
    if errors:
        raise ValidationFailed(errors)
    return settings.update(clean, actor)


def fill(body: str, values: dict[str, str]) -> str:
    """`body` with each known placeholder replaced by its value (an unknown one stays as written)."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), body)


def _seller_values() -> dict[str, str]:
    return {"seller": settings.get("company_name"), "seller_address": settings.get("seller_address") or "—",
            "seller_email": settings.get("notification_email") or "—"}


def privacy_notice(language: str) -> str:
    """The privacy notice now, in `language`, with the seller's details filled in."""
    return fill(text(LegalText.PRIVACY, language), _seller_values())


@dataclass(frozen=True)
class Purchase:
    """What the contracts of one purchase are filled in with (a price before the order exists, or an order)."""

    customer: Customer
    package_name: str
    total_minor: int
    vat_minor: int
    currency: str
    moment: datetime
    order_number: str | None = None

    @classmethod
    def of_order(cls, order: Order, customer: Customer) -> "Purchase":
        return cls(customer, order.item_label, order.amount_minor, order.vat_minor, order.currency, order.created_at,
                   order.number)

    @classmethod
    def at_checkout(cls, customer: Customer, package: Package, total_minor: int, vat_minor: int) -> "Purchase":
        return cls(customer, package.name, total_minor, vat_minor, package.currency, now())


def _purchase_values(purchase: Purchase) -> dict[str, str]:
    """The placeholders' values, worded in the current locale."""
    customer = purchase.customer
    return {
        **_seller_values(),
        "buyer": customer.display_name, "buyer_email": customer.email, "buyer_phone": customer.phone or "—",
        "buyer_address": customer.billing_address or "—", "package": purchase.package_name,
        "price": format_money(purchase.total_minor, purchase.currency),
        "vat": format_money(purchase.vat_minor, purchase.currency),
        "date": format_date(local_day(purchase.moment), "long"),
        "order_number": purchase.order_number or _("(given when you place the order)"),
        "withdrawal": _(
            "The buyer may withdraw from this contract within %(days)d days of its date without giving a reason "
            "and without paying a penalty, by telling the seller in writing or by e-mail; the seller then pays "
            "the price back within 14 days.", days=WITHDRAWAL_DAYS),
        "withdrawal_exception": _(
            "Exception (Distance Contracts Regulation, Article 15(1)(ğ)): the service is performed at once, as "
            "soon as the payment is received. By accepting this contract the buyer asks for that and agrees that "
            "the right of withdrawal ends when the performance begins, that is when the package is activated."),
    }


@dataclass(frozen=True)
class Contracts:
    """The two contracts of one purchase, filled in, in one language."""

    language: str
    pre_information: str
    distance_sales: str


def contracts_for(purchase: Purchase, language: str) -> Contracts:
    """The pre-information form and the distance sales contract of `purchase`, filled in, in `language`."""
    with force_locale(language):
        values = _purchase_values(purchase)
        return Contracts(language, fill(text(LegalText.PRE_INFORMATION, language), values),
                         fill(text(LegalText.DISTANCE_SALES, language), values))


def require_acceptance(accepted: bool) -> None:
    """The buyer accepts both contracts before a purchase, whatever the payment method."""
    if not accepted:
        raise ValidationFailed({"accept_contracts": [_(
            "Tick the box to confirm that you read and accept the pre-information form and the distance sales "
            "contract; we cannot take your order without it.")]})


def freeze(order: Order, customer: Customer, language: str, ip: str | None) -> OrderContract:
    """Keep the contracts of the order, filled in as the buyer accepted them now, from `ip`."""
    language = language if Language.has(language) else settings.get("default_language")
    contracts = contracts_for(Purchase.of_order(order, customer), language)
    order.contract = OrderContract(language=language, pre_information=contracts.pre_information,
                                   distance_sales=contracts.distance_sales, accepted_at=now(), ip=ip)
    return order.contract
