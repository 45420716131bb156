"""Two-factor sign-in for customers who turn it on: the second step of signing in and the set-up
(pages shared with the admin area: two_factor_pages.py)."""
from .. import two_factor_pages as pages
from ..auth import public
from . import bp


@bp.route("/login/two-factor", methods=["GET", "POST"])
@public
def login_two_factor():
    return pages.second_step_page("portal", "portal.home")


@bp.route("/profile/two-factor", methods=["GET", "POST"])
def two_factor_settings():
    return pages.settings_page("portal")


@bp.route("/profile/two-factor/recovery-codes", methods=["POST"])
def two_factor_recovery_codes():
    return pages.regenerate_page("portal")


@bp.route("/profile/two-factor/disable", methods=["POST"])
def two_factor_disable():
    return pages.disable_page("portal")
