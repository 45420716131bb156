"""Tickets and chats for customers: opening one is charged once (rule 6), replies never are; the free
Account verification channel (DT); the files sent with them."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..attachment_responses import attachment_response
from ..auth import current_actor, current_customer
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import Conversation, Department
from ..pagination import page_number
from ..services import attachments, helpdesk, packages
from . import bp
from .forms import MessageForm, NewConversationForm, VerificationForm

SECTIONS = {"tickets": "ticket", "chats": "chat"}
WITH_FILES = {"portal.conversation_new", "portal.conversation_detail", "portal.verification_new"}
WORDS = {
    "ticket": {"title": _l("Tickets"), "new": _l("Open a ticket"), "opened": _l("Your ticket is open.")},
    "chat": {"title": _l("Chats"), "new": _l("Start a chat"), "opened": _l("Your chat has started.")},
}


@bp.url_value_preprocessor
def allow_files(endpoint: str | None, _values) -> None:
    """A signed-in customer's forms with files (multipart) may send more than the site's usual limit: as much as
    the attachment settings allow; their text fields stay within MAX_FORM_MEMORY_SIZE. Set here, before any
    before_request hook reads the form."""
    if endpoint in WITH_FILES and request.mimetype == "multipart/form-data" and current_customer() is not None:
        request.max_content_length = attachments.request_limit()


def _own_conversation(kind: str, conversation_id: int) -> Conversation:
    """The signed-in customer's own ticket or chat; another customer's is 404, as one that does not exist."""
    return db.first_or_404(select(Conversation).where(
        Conversation.id == conversation_id, Conversation.kind == kind,
        Conversation.customer_id == current_customer().id))


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
        ok, conversation = run_service(form, helpdesk.open_conversation, customer, department, kind,
                                       form.subject.data, form.body.data, form.uploads())
        if ok:
            flash(str(WORDS[kind]["opened"]), "success")
            return redirect(url_for("portal.conversation_detail", section=section, conversation_id=conversation.id))
        if form.form_errors:  # not a field's error but the charge's refusal (rule 6): with packages that cover it
            refusal, covering = form.form_errors.pop(), packages.covering(department.id)
    return render_template("portal/conversation_new.html", form=form, section=section, kind=kind,
                           words=WORDS[kind], refusal=refusal, covering=covering)


@bp.route("/<any(tickets, chats):section>/<int:conversation_id>", methods=["GET", "POST"])
def conversation_detail(section: str, conversation_id: int):
    conversation = _own_conversation(SECTIONS[section], conversation_id)
    form = MessageForm()
    if form.validate_on_submit():
        if run_service(form, helpdesk.reply, conversation, current_customer(), form.body.data, form.uploads())[0]:
            flash(_("Your message is sent."), "success")
            return redirect(url_for("portal.conversation_detail", section=section, conversation_id=conversation_id))
    return render_template("portal/conversation.html", conversation=conversation, form=form, section=section,
                           words=WORDS[conversation.kind], button=ButtonForm())


@bp.route("/<any(tickets, chats):section>/<int:conversation_id>/close", methods=["POST"])
def conversation_close(section: str, conversation_id: int):
    conversation = _own_conversation(SECTIONS[section], conversation_id)
    if ButtonForm().validate_on_submit() and run_action(helpdesk.close, conversation, current_actor())[0]:
        flash(_("Closed. Writing a new message opens it again."), "success")
    return redirect(url_for("portal.conversation_detail", section=section, conversation_id=conversation_id))


@bp.route("/verification/new", methods=["GET", "POST"])
def verification_new():
    """Account verification (DT): a free ticket with the identity documents, open to every customer."""
    form = VerificationForm()
    if form.validate_on_submit():
        ok, conversation = run_service(form, helpdesk.open_verification, current_customer(), form.subject.data,
                                       form.body.data, form.uploads())
        if ok:
            flash(_("Your documents are sent. We will tell you here when your identity is verified."), "success")
            return redirect(url_for("portal.conversation_detail", section="tickets", conversation_id=conversation.id))
    return render_template("portal/verification_new.html", form=form, customer=current_customer())


@bp.route("/attachments/<int:attachment_id>")
def attachment(attachment_id: int):
    """A file of one of the customer's own tickets or chats; anyone else's is 404, as one that does not exist."""
    return attachment_response(attachments.for_customer(current_customer(), attachment_id))
