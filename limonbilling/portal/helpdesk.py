"""Tickets and chats for customers: opening one is charged once (rule 6), replies never are."""
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..auth import current_actor, current_customer
from ..extensions import db
from ..forms import run_service, show_errors
from ..models import Conversation, Department
from ..pagination import page_number
from ..services import ServiceError, ValidationFailed, helpdesk, packages
from . import bp
from .forms import MessageForm, NewConversationForm

SECTIONS = {"tickets": "ticket", "chats": "chat"}
WORDS = {
    "ticket": {"title": _l("Tickets"), "new": _l("Open a ticket"), "opened": _l("Your ticket is open.")},
    "chat": {"title": _l("Chats"), "new": _l("Start a chat"), "opened": _l("Your chat has started.")},
}


def _own_conversation(kind: str, conversation_id: int) -> Conversation:
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or conversation.kind != kind or conversation.customer_id != current_customer().id:
        abort(404)
    return conversation


@bp.route("/<any(tickets, chats):section>")
def conversation_list(section: str):
    kind = SECTIONS[section]
    page = db.paginate(helpdesk.customer_conversations(current_customer(), kind),
                       page=page_number(request.args),
                       per_page=current_app.config["ITEMS_PER_PAGE"], error_out=False)
    return render_template("portal/conversations.html", page=page, section=section, kind=kind, words=WORDS[kind])


@bp.route("/<any(tickets, chats):section>/new", methods=["GET", "POST"])
def conversation_new(section: str):
    """Open a ticket or start a chat; a refusal says why and links to the packages that cover it."""
    kind = SECTIONS[section]
    customer = current_customer()
    form = NewConversationForm()
    choices = helpdesk.department_choices(customer)
    form.department_id.choices = [(d.id, f"{d.name} — {label}") for d, label in choices]
    refusal, covering = None, []
    if form.validate_on_submit():
        department = db.session.get(Department, form.department_id.data)
        try:
            conversation = helpdesk.open_conversation(customer, department, kind, form.subject.data, form.body.data)
        except ValidationFailed as error:
            db.session.rollback()
            show_errors(form, error)
        except ServiceError as error:
            db.session.rollback()
            refusal, covering = error.message, packages.covering(department.id)
        else:
            db.session.commit()
            flash(str(WORDS[kind]["opened"]), "success")
            return redirect(url_for("portal.conversation_detail", section=section, conversation_id=conversation.id))
    return render_template("portal/conversation_new.html", form=form, section=section, kind=kind,
                           words=WORDS[kind], refusal=refusal, covering=covering)


@bp.route("/<any(tickets, chats):section>/<int:conversation_id>", methods=["GET", "POST"])
def conversation_detail(section: str, conversation_id: int):
    conversation = _own_conversation(SECTIONS[section], conversation_id)
    form = MessageForm()
    if form.validate_on_submit():
        if run_service(form, helpdesk.reply, conversation, current_customer(), form.body.data)[0]:
            flash(_("Your message is sent."), "success")
            return redirect(url_for("portal.conversation_detail", section=section, conversation_id=conversation_id))
    return render_template("portal/conversation.html", conversation=conversation, form=form, section=section,
                           words=WORDS[conversation.kind])


@bp.route("/<any(tickets, chats):section>/<int:conversation_id>/close", methods=["POST"])
def conversation_close(section: str, conversation_id: int):
    conversation = _own_conversation(SECTIONS[section], conversation_id)
    if MessageForm().validate_on_submit():
        helpdesk.close(conversation, current_actor())
        db.session.commit()
        flash(_("Closed. Writing a new message opens it again."), "success")
    return redirect(url_for("portal.conversation_detail", section=section, conversation_id=conversation_id))
