"""Announcements (agents with `support`): short news and guides for the customers' home page (DT)."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..auth import current_actor, current_agent, requires
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import Announcement
from ..services import announcements
from . import bp
from .forms import AnnouncementEditForm, AnnouncementForm, ToggleForm


@bp.route("/announcements", methods=["GET", "POST"])
@requires("support")
def announcement_list():
    form = AnnouncementForm()
    if form.validate_on_submit():
        ok, announcement = run_service(form, announcements.create, {
            "language": form.language.data, "title": form.title.data, "body": form.body.data,
            "publish": form.publish.data}, current_agent(), current_actor())
        if ok:
            flash(_("“%(title)s” is published.", title=announcement.title) if announcement.published
                  else _("“%(title)s” is saved as a draft.", title=announcement.title), "success")
            return redirect(url_for("admin.announcement_list"))
    return render_template("admin/announcements.html", form=form, announcements=announcements.all_announcements(),
                           toggle_form=ToggleForm(), button=ButtonForm())


@bp.route("/announcements/<int:announcement_id>/edit", methods=["GET", "POST"])
@requires("support")
def announcement_edit(announcement_id: int):
    announcement = db.get_or_404(Announcement, announcement_id)
    form = AnnouncementEditForm(obj=announcement)
    if form.validate_on_submit():
        ok, changed = run_service(form, announcements.update, announcement, {
            "language": form.language.data, "title": form.title.data, "body": form.body.data}, current_actor())
        if ok:
            flash(_("“%(title)s” is saved.", title=announcement.title) if changed else _("Nothing was changed."),
                  "success" if changed else "info")
            return redirect(url_for("admin.announcement_list"))
    return render_template("admin/announcement_edit.html", form=form, announcement=announcement)


@bp.route("/announcements/<int:announcement_id>/published", methods=["POST"])
@requires("support")
def announcement_published(announcement_id: int):
    announcement = db.get_or_404(Announcement, announcement_id)
    form = ToggleForm()
    if form.validate_on_submit() and run_action(announcements.set_published, announcement, form.enabled.data,
                                                current_actor())[0]:
        flash(_("“%(title)s” is published.", title=announcement.title) if announcement.published
              else _("“%(title)s” is withdrawn: customers no longer see it.", title=announcement.title), "success")
    return redirect(url_for("admin.announcement_list"))


@bp.route("/announcements/<int:announcement_id>/delete", methods=["POST"])
@requires("support")
def announcement_delete(announcement_id: int):
    announcement = db.get_or_404(Announcement, announcement_id)
    title = announcement.title
    if ButtonForm().validate_on_submit() and run_action(announcements.delete, announcement, current_actor())[0]:
        flash(_("“%(title)s” is deleted.", title=title), "success")
    return redirect(url_for("admin.announcement_list"))
