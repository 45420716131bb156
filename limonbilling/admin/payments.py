"""Settings → Payment Systems (agents with `settings`)."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor, requires
from ..extensions import db
from ..forms import show_errors
from ..payments.nestpay_gateway import BANK_PRESETS, NestPayGateway, preset_urls, save_settings
from ..services import ValidationFailed, settings
from . import bp
from .forms import PaymentSettingsForm


@bp.route("/settings/payments", methods=["GET", "POST"])
@requires("settings")
def settings_payments():
    current = settings.get_all()
    secrets_stored = {key: bool(current[key]) for key in settings.SECRET_KEYS}
    form = PaymentSettingsForm(data={k: v for k, v in current.items() if k not in settings.SECRET_KEYS})
    form.nestpay_bank.choices = [(key, label) for key, (label, _host) in BANK_PRESETS.items()]
    if form.validate_on_submit():
        if "fill_preset" in request.form:
            form.nestpay_gate_url.data, form.nestpay_api_url.data = preset_urls(form.nestpay_bank.data)
            flash(_("The addresses of %(bank)s are filled in; check them and save.",
                    bank=BANK_PRESETS[form.nestpay_bank.data][0]), "info")
        else:
            try:
                save_settings({field.name: field.data for field in form if field.name != "csrf_token"},
                              current_actor())
            except ValidationFailed as error:
                db.session.rollback()
                show_errors(form, error)
            else:
                db.session.commit()
                flash(_("Payment settings are saved."), "success")
                return redirect(url_for("admin.settings_payments"))
    return render_template(
        "admin/settings_payments.html", form=form, secrets_stored=secrets_stored,
        available=NestPayGateway().is_available(),
    )
