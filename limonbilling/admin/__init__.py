"""The agents' admin pages, served under /admin."""
from flask import Blueprint, current_app, redirect, request, url_for

from ..auth import current_agent

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_agent():
    """Every admin page needs a signed-in agent unless the view is marked public (sign-in)."""
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "is_public", False) or current_agent() is not None:
        return None
    return redirect(url_for("admin.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))


from . import activations, affiliates, announcements, billing, cancellations, invoicing, legal, notifications, order_settings, orders, payments, privacy, promotions, support, tokens, two_factor, views, webhooks  # noqa: E402,F401,I001,E501
