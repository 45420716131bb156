"""Settings → API tokens: agents with `settings` list and revoke them; only an owner creates one (shown once)."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..auth import OWNER, current_actor, requires
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import ApiToken
from ..services import api_tokens as tokens
from . import bp
from .forms import ApiTokenForm


@bp.route("/settings/api-tokens")
@requires("settings")
def api_tokens():
    return _tokens_page(ApiTokenForm(formdata=None))


@bp.route("/settings/api-tokens/new", methods=["POST"])
@requires(OWNER)
def api_token_create():
    """The plain token is rendered once, in the answer to the POST that made it; never stored or redirected."""
    form = ApiTokenForm()
    new_token = None
    if form.validate_on_submit():
        ok, created = run_service(form, tokens.create_token, form.name.data, form.scopes(), current_actor())
        if ok:
            _token, new_token = created
            form = ApiTokenForm(formdata=None)
    return _tokens_page(form, new_token)


def _tokens_page(form: ApiTokenForm, new_token: str | None = None):
    response = render_template("admin/api_tokens.html", form=form, new_token=new_token,
                               tokens=tokens.list_tokens(), revoke_form=ButtonForm())
    return response, 200, {"Cache-Control": "no-store"}


@bp.route("/settings/api-tokens/<int:token_id>/revoke", methods=["POST"])
@requires("settings")
def api_token_revoke(token_id: int):
    token = db.get_or_404(ApiToken, token_id)
    if ButtonForm().validate_on_submit() and run_action(tokens.revoke, token, current_actor())[0]:
        flash(_("Token %(name)s is revoked; calls with it are refused from now on.", name=token.name), "success")
    return redirect(url_for("admin.api_tokens"))
