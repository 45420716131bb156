"""What the law on distance contracts and KVKK asks us to keep: the contracts a buyer accepted with an order,
and each change of a customer's consent to marketing e-mails."""
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import now
from ..extensions import db
from .choices import Language
from .columns import UtcDateTime


class OrderContract(db.Model):
    """The pre-information form and the distance sales contract exactly as the buyer accepted them (filled in,
    in the language shown), with the moment and the IP address. Written once with the order, never changed:
    editing the texts in the settings changes only later orders."""

    __tablename__ = "order_contracts"
    __table_args__ = (CheckConstraint(Language.check("language"), name="language"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(5))
    pre_information: Mapped[str] = mapped_column(Text)
    distance_sales: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    ip: Mapped[str | None] = mapped_column(String(45))


class MarketingConsent(db.Model):
    """One change of a customer's consent to marketing e-mails (given or withdrawn) with its moment; the newest
    row is the customer's choice now, and no row means no consent."""

    __tablename__ = "marketing_consents"
    __table_args__ = (Index("ix_marketing_consents_customer_id_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    granted: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    ip: Mapped[str | None] = mapped_column(String(45))
