"""Settings → Legal texts (agents with `settings`): the pre-information form, the distance sales contract and the
privacy notice in each language, with the placeholders services/contracts.py fills in."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..auth import current_actor, requires
from ..forms import run_service
from ..models import Language, LegalText
from ..services import contracts, settings
from . import bp
from .forms import LegalTextsForm


@bp.route("/settings/legal", methods=["GET", "POST"])
@requires("settings")
def settings_legal():
    form = LegalTextsForm(data=contracts.all_texts())
    values = {name: form[name].data for name in form.data if name != "csrf_token"}
    if form.validate_on_submit() and run_service(form, contracts.update_texts, values, current_actor())[0]:
        flash(_("The legal texts are saved. New orders get them; orders placed before keep the texts their "
                "buyers accepted."), "success")
        return redirect(url_for("admin.settings_legal"))
    return render_template("admin/settings_legal.html", form=form, texts=LegalText, languages=Language,
                           key=settings.legal_text_key, purchase_placeholders=contracts.PURCHASE_PLACEHOLDERS,
                           seller_placeholders=contracts.SELLER_PLACEHOLDERS)
