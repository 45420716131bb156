"""All models, imported here so Alembic and `db.create_all()` see every table."""
from .accounts import PERMISSIONS, Agent, Customer, CustomerDepartment, CustomerNote
from .catalog import Department
from .settings import AuditEntry, Setting

__all__ = [
    "PERMISSIONS",
    "Agent",
    "AuditEntry",
    "Customer",
    "CustomerDepartment",
    "CustomerNote",
    "Department",
    "Setting",
]
