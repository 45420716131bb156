"""Two-factor sign-in for agents: the second step of signing in, the agent's own set-up, and the owner's
rule that every agent must use it (pages shared with the portal: two_factor_pages.py)."""
from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from .. import two_factor_pages as pages
from ..auth import OWNER, SIGNED_IN, current_actor, current_agent, public, requires
from ..forms import TwoFactorRequirementForm, run_action
from ..services import two_factor
from . import bp

OPEN_WHILE_REQUIRED = {"admin.two_factor_settings", "admin.logout"}


@bp.before_request
def require_two_factor():
    """While the owner requires it, an agent without two-factor sign-in can only set it up or sign out."""
    agent = current_agent()
    if (agent is None or agent.two_factor_enabled or request.endpoint in OPEN_WHILE_REQUIRED
            or not two_factor.required_for(agent)):
        return None
    flash(_("The owner requires two-factor sign-in for every agent. Set it up to go on."), "warning")
    return redirect(url_for("admin.two_factor_settings"))


@bp.route("/login/two-factor", methods=["GET", "POST"])
@public
def login_two_factor():
    return pages.second_step_page("admin", "admin.dashboard")


@bp.route("/profile/two-factor", methods=["GET", "POST"])
@requires(SIGNED_IN)
def two_factor_settings():
    return pages.settings_page("admin")


@bp.route("/profile/two-factor/recovery-codes", methods=["POST"])
@requires(SIGNED_IN)
def two_factor_recovery_codes():
    return pages.regenerate_page("admin")


@bp.route("/profile/two-factor/disable", methods=["POST"])
@requires(SIGNED_IN)
def two_factor_disable():
    return pages.disable_page("admin")


@bp.route("/settings/agents/two-factor", methods=["POST"])
@requires(OWNER)
def two_factor_requirement():
    """Settings → Agents: only an owner may require two-factor sign-in of every agent."""
    form = TwoFactorRequirementForm()
    if form.validate_on_submit() and run_action(two_factor.require_for_agents, form.required.data, current_actor())[0]:
        flash(_("Every agent must now use two-factor sign-in.") if form.required.data
              else _("Two-factor sign-in is now each agent's choice."), "success")
    return redirect(url_for("admin.agent_list"))
