"""The customer self-service portal, served at /."""
from flask import Blueprint, current_app, redirect, request, url_for

from ..auth import current_customer

bp = Blueprint("portal", __name__, template_folder=None)


@bp.before_request
def require_customer():
    """Every portal page needs a signed-in customer unless the view is marked public."""
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "is_public", False) or current_customer() is not None:
        return None
    return redirect(url_for("portal.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))


from . import activation, balance, billing, checkout, helpdesk, privacy, two_factor, views  # noqa: E402,F401
