"""The customer's consent to marketing e-mails (KVKK: explicit, optional, separate from the contracts, and as
easy to withdraw as to give). Every change is a row with its moment and IP address; the newest row is the
choice now, and a customer who never chose has not consented."""
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import Customer, MarketingConsent
from . import audit


def marketing_history(customer: Customer) -> list[MarketingConsent]:
    """Every change of the customer's marketing consent, newest first."""
    return list(db.session.scalars(select(MarketingConsent).where(MarketingConsent.customer_id == customer.id)
                                   .order_by(MarketingConsent.id.desc())))


def latest_marketing_choice(customer: Customer) -> MarketingConsent | None:
    return db.session.scalar(select(MarketingConsent).where(MarketingConsent.customer_id == customer.id)
                             .order_by(MarketingConsent.id.desc()).limit(1))


def has_marketing_consent(customer: Customer) -> bool:
    latest = latest_marketing_choice(customer)
    return latest is not None and latest.granted


def set_marketing_consent(customer: Customer, granted: bool, actor: audit.Actor) -> bool:
    """Record the customer's choice if it changes it (the first "no" of someone who never chose changes
    nothing); returns whether a change was recorded."""
    if has_marketing_consent(customer) == granted:
        return False
    db.session.add(MarketingConsent(customer_id=customer.id, granted=granted, changed_at=now(), ip=actor.ip))
    audit.record(actor, "customer.marketing_consent", customer, granted=granted)
    return True
