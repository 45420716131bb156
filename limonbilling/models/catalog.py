"""What is sold: departments and packages."""
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import Currency, PackageType
from .columns import UtcDateTime


class Department(db.Model):
    """A help-desk department; one new ticket or chat in it costs `credit_per_request` credits."""

    __tablename__ = "departments"
    __table_args__ = (
        CheckConstraint("credit_per_request >= 0", name="credit_per_request"),
        Index("uq_departments_name_ci", func.lower(literal_column("name")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    credit_per_request: Mapped[int] = mapped_column(Integer, default=0)


package_departments = Table(
    "package_departments",
    db.Model.metadata,
    Column("package_id", ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id"), primary_key=True, index=True),
)



class Package(db.Model):
    """What customers buy (domain.md §4). Sales keep a snapshot, so editing never changes what was sold."""

    __tablename__ = "packages"
    __table_args__ = (
        CheckConstraint(PackageType.check("type"), name="type"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        CheckConstraint("price_minor > 0", name="price_positive"),
        CheckConstraint(
            "(type = 'credit' AND credits > 0 AND days IS NULL) OR "
            "(type = 'subscription' AND days > 0 AND credits IS NULL)",
            name="credits_or_days",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(12))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="TRY")
    credits: Mapped[int | None] = mapped_column(Integer)
    days: Mapped[int | None] = mapped_column(Integer)
    on_sale: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    departments: Mapped[list[Department]] = relationship(secondary=package_departments, order_by=Department.name)

    @property
    def department_ids(self) -> list[int]:
        return sorted(department.id for department in self.departments)

    def snapshot(self) -> dict:
        """What was sold, frozen: stored with each grant (and order) of this package."""
        return {
            "package_id": self.id,
            "name": self.name,
            "type": self.type,
            "price_minor": self.price_minor,
            "currency": self.currency,
            "credits": self.credits,
            "days": self.days,
            "department_ids": self.department_ids,
            "department_names": [department.name for department in self.departments],
        }
