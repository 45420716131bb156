"""The help-desk JSON API under /api/v1, for an external help desk (domain.md §10)."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import views  # noqa: E402,F401
