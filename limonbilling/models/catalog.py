"""What is sold: departments (and, with billing, packages)."""
from sqlalchemy import Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class Department(db.Model):
    """A help-desk department; one new ticket or chat in it costs `credit_per_request` credits."""

    __tablename__ = "departments"
    __table_args__ = (CheckConstraint("credit_per_request >= 0", name="credit_per_request"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    credit_per_request: Mapped[int] = mapped_column(Integer, default=0)
