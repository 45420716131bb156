"""Agents (staff using /admin) and customers (using the portal), with the customer card."""
from datetime import datetime
from functools import cache

from flask_login import UserMixin
from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..clock import now
from ..extensions import db
from .choices import AccountType, DepartmentSource, Language, PackageType, Permission
from .columns import UtcDateTime


@cache
def _unusable_hash() -> str:
    """Made on first use, not at import: hashing costs a tenth of a second in every process that starts."""
    return generate_password_hash("no account has this password")


def check_password_of_nobody(password: str) -> bool:
    """Check a password as long as for a real account, and fail: a sign-in for an address without an
    account takes as long as a wrong password (the time does not tell which addresses have accounts)."""
    check_password_hash(_unusable_hash(), password)
    return False


def hash_password_for_nobody(password: str) -> None:
    """Hash a password and throw it away: a registration for a known address costs what a new one does."""
    generate_password_hash(password)


class SignInMixin:
    """What signing in needs: the password, the session version and the second factor.

    `session_version` is part of the Flask-Login id kept in the session and the
    remember cookie; bumping it (deactivation, a new password or e-mail address,
    "sign out everywhere") ends every session the account has.
    """

    password_hash: Mapped[str] = mapped_column(String(255))
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Two-factor sign-in (TOTP): the secret while enrolling or enrolled, the time enrolment was
    # confirmed, and the hashes of the one-time recovery codes not used yet.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recovery_code_hashes: Mapped[list | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # a code works once: steps up to this are spent

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        return f"{self.kind}:{self.id}:{self.session_version}"

    def end_sessions(self) -> None:
        """Every session and remember cookie of the account stops working at its next request."""
        self.session_version = (self.session_version or 0) + 1

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None


class Agent(SignInMixin, UserMixin, db.Model):
    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint(Language.check("language"), name="language"),
        Index("uq_agents_email_ci", func.lower(literal_column("email")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    is_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    can_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    can_customers: Mapped[bool] = mapped_column(Boolean, default=False)
    can_settings: Mapped[bool] = mapped_column(Boolean, default=False)
    can_support: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str | None] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    kind = "agent"

    @property
    def is_active(self) -> bool:
        return self.active

    def can(self, permission: str) -> bool:
        """The owner holds every permission."""
        if not Permission.has(permission):
            raise ValueError(f"unknown permission {permission!r}")
        return self.is_owner or bool(getattr(self, f"can_{permission}"))

    @property
    def first_name(self) -> str:
        """The first word of the name, to greet the agent in e-mails."""
        return self.name.split()[0] if self.name.strip() else self.name

    @property
    def permissions(self) -> list[str]:
        return [p for p in Permission if self.can(p)]


# What the admin searches look in (services/customers.py `matching`), as SQL folded to lower case. On
# PostgreSQL each has a trigram (pg_trgm) index, so `LIKE '%…%'` does not read every customer; the name is
# written as PostgreSQL gives the index back, so the migrations compare equal to the models.
CUSTOMER_SEARCH_SQL = {
    "name": "lower((first_name || ' ') || last_name)",
    "company": "lower(company_name)",
    "email": "lower(email)",
    "phone": "phone",
}


class Customer(SignInMixin, UserMixin, db.Model):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(AccountType.check("account_type"), name="account_type"),
        CheckConstraint("credits >= 0", name="credits_not_negative"),
        CheckConstraint(PackageType.check("package_type"), name="package_type"),
        CheckConstraint(Language.check("language"), name="language"),
        Index("uq_customers_email_ci", func.lower(literal_column("email")), unique=True),
        # Rule 1, one type at a time: a subscriber holds no credits.
        CheckConstraint("credits = 0 OR COALESCE(package_type, '') = 'credit'", name="credits_only_for_credit_type"),
        *(Index(f"ix_customers_{key}_trigram", literal_column(sql).label(key), postgresql_using="gin",
                postgresql_ops={key: "gin_trgm_ops"}).ddl_if(dialect="postgresql")
          for key, sql in CUSTOMER_SEARCH_SQL.items()),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_type: Mapped[str] = mapped_column(String(12), default="individual")
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(20))
    national_id: Mapped[str | None] = mapped_column(String(11))
    company_name: Mapped[str | None] = mapped_column(String(200))
    tax_number: Mapped[str | None] = mapped_column(String(11))
    tax_office: Mapped[str | None] = mapped_column(String(120))
    billing_address: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(5))
    package_type: Mapped[str | None] = mapped_column(String(12))
    credits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    email_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Warn by e-mail when credits fall below this; None uses the global setting.
    low_credit_threshold: Mapped[int | None] = mapped_column(Integer)
    identity_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    identity_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    # Set when an approved erasure request anonymised the account (services/privacy.py): it signs in no more.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    departments: Mapped[list["CustomerDepartment"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )
    notes: Mapped[list["CustomerNote"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerNote.id.desc()"
    )

    kind = "customer"

    @property
    def is_active(self) -> bool:
        return self.erased_at is None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def display_name(self) -> str:
        if self.account_type == "corporate" and self.company_name:
            return f"{self.company_name} ({self.full_name})"
        return self.full_name


event.listen(Customer.__table__, "before_create",
             DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))


class CustomerDepartment(db.Model):
    """A department switched on on a customer's card; `source` says who switched it on.

    `manual`: an agent enabled it, usable free of charge. `package`: a purchase
    enabled it, usable while an entitlement covers it.
    """

    __tablename__ = "customer_departments"
    __table_args__ = (
        UniqueConstraint("customer_id", "department_id"),
        CheckConstraint(DepartmentSource.check("source"), name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    source: Mapped[str] = mapped_column(String(10))
    enabled_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    customer: Mapped[Customer] = relationship(back_populates="departments")
    department: Mapped["Department"] = relationship()  # noqa: F821


class CustomerNote(db.Model):
    __tablename__ = "customer_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    customer: Mapped[Customer] = relationship(back_populates="notes")
    agent: Mapped[Agent | None] = relationship()

