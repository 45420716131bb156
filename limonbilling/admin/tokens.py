"""Settings → API tokens (agents with `settings`): create (shown once), list, revoke."""
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..auth import current_actor, requires
from ..extensions import db
from ..forms import run_service
from ..models import ApiToken
from ..services import api_tokens as tokens
from . import bp
from .forms import ApiTokenForm, ToggleForm


@bp.route("/settings/api-tokens", methods=["GET", "POST"])
@requires("settings")
def api_tokens():
    """The plain token is rendered once, in the answer to the POST that made it; never stored or redirected."""
    form = ApiTokenForm()
    new_token = None
    if form.validate_on_submit():
        ok, created = run_service(form, tokens.create_token, form.name.data, form.scopes(), current_actor())
        if ok:
            _token, new_token = created
            form = ApiTokenForm(formdata=None)
    response = render_template("admin/api_tokens.html", form=form, new_token=new_token,
                               tokens=tokens.list_tokens(), revoke_form=ToggleForm())
    return response, 200, {"Cache-Control": "no-store"}


@bp.route("/settings/api-tokens/<int:token_id>/revoke", methods=["POST"])
@requires("settings")
def api_token_revoke(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None:
        abort(404)
    if ToggleForm().validate_on_submit():
        tokens.revoke(token, current_actor())
        db.session.commit()
        flash(_("Token %(name)s is revoked; calls with it are refused from now on.", name=token.name), "success")
    return redirect(url_for("admin.api_tokens"))
