"""Settings → Payment Systems (agents with `settings`)."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor, requires
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import BankAccount
from ..payments import gateways
from ..payments.nestpay_gateway import BANK_PRESETS, preset_urls, save_settings
from ..services import bank_transfer, instalments, settings, top_ups
from . import bp
from .forms import BankAccountForm, InstalmentSettingsForm, PaymentSettingsForm, TopUpSettingsForm


@bp.route("/settings/payments", methods=["GET", "POST"])
@requires("settings")
def settings_payments():
    form = _payment_form()
    if form.validate_on_submit():
        if "fill_preset" in request.form:
            form.nestpay_gate_url.data, form.nestpay_api_url.data = preset_urls(form.nestpay_bank.data)
            flash(_("The addresses of %(bank)s are filled in; check them and save.",
                    bank=BANK_PRESETS[form.nestpay_bank.data][0]), "info")
        else:
            values = {field.name: field.data for field in form if field.name != "csrf_token"}
            if run_service(form, save_settings, values, current_actor())[0]:
                flash(_("Payment settings are saved."), "success")
                return redirect(url_for("admin.settings_payments"))
    return _payments_page(form)


def _payment_form(**kwargs) -> PaymentSettingsForm:
    """The NestPay form filled from the settings (secrets never: they are write-only)."""
    form = PaymentSettingsForm(data={k: v for k, v in settings.get_all().items() if k not in settings.SECRET_KEYS},
                               **kwargs)
    form.nestpay_bank.choices = [(key, label) for key, (label, _host) in BANK_PRESETS.items()]
    return form


def _payments_page(form: PaymentSettingsForm, instalment_form: InstalmentSettingsForm | None = None, status=200,
                   top_up_form: TopUpSettingsForm | None = None):
    if top_up_form is None:
        top_up_form = TopUpSettingsForm(prefix="top_ups", formdata=None, data=top_ups.settings_text())
    if instalment_form is None:
        instalment_form = InstalmentSettingsForm(prefix="instalments", formdata=None, data={
            "card_instalments_enabled": settings.get("card_instalments_enabled"),
            "card_instalment_plans": instalments.plans_text()})
    return render_template(
        "admin/settings_payments.html", form=form,
        secrets_stored={key: bool(settings.get(key)) for key in settings.SECRET_KEYS},
        available=gateways.gateway().is_available(), accounts=bank_transfer.all_accounts(),
        account_form=BankAccountForm(prefix="account"), remove_form=ButtonForm(), instalment_form=instalment_form,
        top_up_form=top_up_form,
    ), status


@bp.route("/settings/payments/top-ups", methods=["POST"])
@requires("settings")
def settings_top_ups():
    form = TopUpSettingsForm(prefix="top_ups")
    if form.validate_on_submit() and run_service(form, top_ups.save_settings, form.top_up_minimum.data,
                                                 form.top_up_maximum.data, form.top_up_invoicing.data,
                                                 current_actor())[0]:
        flash(_("Top-up settings are saved."), "success")
        return redirect(url_for("admin.settings_payments") + "#top-ups")
    return _payments_page(_payment_form(formdata=None), status=422, top_up_form=form)


@bp.route("/settings/payments/instalments", methods=["POST"])
@requires("settings")
def settings_instalments():
    form = InstalmentSettingsForm(prefix="instalments")
    if form.validate_on_submit() and run_service(form, instalments.save_settings, form.card_instalments_enabled.data,
                                                 form.card_instalment_plans.data, current_actor())[0]:
        flash(_("Instalment settings are saved."), "success")
        return redirect(url_for("admin.settings_payments") + "#instalments")
    return _payments_page(_payment_form(formdata=None), form, 422)


@bp.route("/settings/payments/bank-accounts", methods=["POST"])
@requires("settings")
def bank_account_add():
    form = BankAccountForm(prefix="account")
    if form.validate_on_submit():
        if run_action(bank_transfer.add_account, bank_name=form.bank_name.data, account_holder=form.account_holder.data,
                      iban=form.iban.data, currency=form.currency.data, actor=current_actor())[0]:
            flash(_("The bank account is added; customers can now pay by bank transfer."), "success")
    return redirect(url_for("admin.settings_payments"))


@bp.route("/settings/payments/bank-accounts/<int:account_id>/remove", methods=["POST"])
@requires("settings")
def bank_account_remove(account_id: int):
    account = db.get_or_404(BankAccount, account_id)
    if ButtonForm().validate_on_submit() and run_action(bank_transfer.remove_account, account, current_actor())[0]:
        flash(_("The bank account is removed."), "success")
    return redirect(url_for("admin.settings_payments"))
