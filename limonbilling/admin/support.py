"""Tickets and chats for agents with `support`: lists by status, answering, closing."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..auth import current_actor, current_agent, requires
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import Conversation, ConversationStatus
from ..pagination import page_number
from ..services import helpdesk
from . import bp
from .forms import ReplyForm

SECTIONS = {"tickets": "ticket", "chats": "chat"}
TITLES = {"ticket": _l("Tickets"), "chat": _l("Chats")}


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
    page = db.paginate(helpdesk.agent_conversations(kind, status), page=page_number(request.args),
                       per_page=current_app.config["ITEMS_PER_PAGE"], error_out=False)
    return render_template("admin/conversations.html", page=page, section=section, status=status,
                           statuses=list(ConversationStatus), title=TITLES[kind])


@bp.route("/<any(tickets, chats):section>/<int:conversation_id>", methods=["GET", "POST"])
@requires("support")
def support_detail(section: str, conversation_id: int):
    conversation = _conversation_or_404(section, conversation_id)
    form = ReplyForm()
    if form.validate_on_submit():
        if run_service(form, helpdesk.reply, conversation, current_agent(), form.body.data)[0]:
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
