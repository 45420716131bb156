"""Tickets and chats for agents with `support`: lists by status and channel, answering with files, closing,
and marking a customer identity-verified from an Account verification ticket."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..attachment_responses import attachment_response
from ..auth import SIGNED_IN, current_actor, current_agent, requires
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import Conversation, ConversationChannel, ConversationStatus
from ..pagination import page_number
from ..services import attachments, helpdesk
from . import bp
from .forms import ReplyForm

SECTIONS = {"tickets": "ticket", "chats": "chat"}
TITLES = {"ticket": _l("Tickets"), "chat": _l("Chats")}


@bp.url_value_preprocessor
def allow_files(endpoint: str | None, _values) -> None:
    """A signed-in agent's reply with files may send more than the site's usual limit: as much as the
    attachment settings allow. Set here, before any before_request hook reads the form."""
    if endpoint == "admin.support_detail" and request.mimetype == "multipart/form-data" and current_agent() is not None:
        request.max_content_length = attachments.request_limit()


def _conversation_or_404(section: str, conversation_id: int) -> Conversation:
    """The ticket or chat, found only under its own section (a chat's id under /tickets is 404)."""
    return db.first_or_404(select(Conversation).where(Conversation.id == conversation_id,
                                                      Conversation.kind == SECTIONS[section]))


@bp.route("/<any(tickets, chats):section>")
@requires("support")
def support_list(section: str):
    kind = SECTIONS[section]
    status = request.args.get("status", "")
    status = status if ConversationStatus.has(status) else None
    channel = request.args.get("channel", "")
    channel = channel if kind == "ticket" and ConversationChannel.has(channel) else None
    page = db.paginate(helpdesk.agent_conversations(kind, status, channel), page=page_number(request.args),
                       per_page=current_app.config["ITEMS_PER_PAGE"], error_out=False)
    return render_template("admin/conversations.html", page=page, section=section, status=status, channel=channel,
                           statuses=list(ConversationStatus), title=TITLES[kind])


@bp.route("/<any(tickets, chats):section>/<int:conversation_id>", methods=["GET", "POST"])
@requires("support")
def support_detail(section: str, conversation_id: int):
    conversation = _conversation_or_404(section, conversation_id)
    form = ReplyForm()
    if form.validate_on_submit():
        if run_service(form, helpdesk.reply, conversation, current_agent(), form.body.data, form.uploads())[0]:
            flash(_("Your reply is sent."), "success")
            return redirect(url_for("admin.support_detail", section=section, conversation_id=conversation_id))
    return render_template("admin/conversation.html", conversation=conversation, form=form, section=section,
                           title=TITLES[conversation.kind], button=ButtonForm())


@bp.route("/<any(tickets, chats):section>/<int:conversation_id>/close", methods=["POST"])
@requires("support")
def support_close(section: str, conversation_id: int):
    conversation = _conversation_or_404(section, conversation_id)
    if ButtonForm().validate_on_submit() and run_action(helpdesk.close, conversation, current_actor())[0]:
        flash(_("Closed."), "success")
    return redirect(url_for("admin.support_detail", section=section, conversation_id=conversation_id))


@bp.route("/tickets/<int:conversation_id>/verify-identity", methods=["POST"])
@requires("support")
def support_verify_identity(conversation_id: int):
    """Account verification: the agent has seen the documents and marks the customer identity-verified."""
    conversation = _conversation_or_404("tickets", conversation_id)
    if ButtonForm().validate_on_submit():
        ok, changed = run_action(helpdesk.verify_identity, conversation, current_actor())
        if ok:
            flash(_("Identity marked as verified.") if changed else _("This customer's identity was already verified."),
                  "success")
    return redirect(url_for("admin.support_detail", section="tickets", conversation_id=conversation_id))


@bp.route("/attachments/<int:attachment_id>")
@requires(SIGNED_IN)
def support_attachment(attachment_id: int):
    """A file of a ticket or chat, for agents with `support`; to any other agent it does not exist (404)."""
    return attachment_response(attachments.for_agent(current_agent(), attachment_id))
