"""Announcements (DT): short news and guides agents publish for customers, each in one language.

A customer reads those in the language their pages are in (their account's, or the one they chose), so an
announcement meant for everyone is written twice, once per language. Texts are plain: pages escape them and
keep their line breaks; no markup is ever interpreted.
"""
from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import Agent, Announcement, Language
from . import ValidationFailed, audit

TITLE_LENGTH = 200
BODY_LENGTH = 5000
ON_HOME_PAGE = 3
LISTED = 100  # the portal's list: the newest this many


def _clean(values: dict) -> dict:
    """The language, title and text, checked: what a new announcement and an edit both need."""
    errors: dict[str, list[str]] = {}
    language = values.get("language")
    if not Language.has(language):
        errors["language"] = [_("Choose the language the announcement is written in.")]
    title = (values.get("title") or "").strip()
    if not title or len(title) > TITLE_LENGTH:
        errors["title"] = [_("Enter a title of at most %(max)d characters.", max=TITLE_LENGTH)]
    body = (values.get("body") or "").strip()
    if not body or len(body) > BODY_LENGTH:
        errors["body"] = [_("Enter a text of at most %(max)d characters.", max=BODY_LENGTH)]
    if errors:
        raise ValidationFailed(errors)
    return {"language": language, "title": title, "body": body}


def create(values: dict, agent: Agent | None, actor: audit.Actor) -> Announcement:
    """A new announcement, published at once when `values["publish"]`, else kept as a draft."""
    clean = _clean(values)
    announcement = Announcement(**clean, agent_id=agent.id if agent else None,
                                published_at=now() if values.get("publish") else None)
    db.session.add(announcement)
    db.session.flush()
    audit.record(actor, "announcement.create", announcement, title=clean["title"], language=clean["language"],
                 published=announcement.published)
    return announcement


def update(announcement: Announcement, values: dict, actor: audit.Actor) -> list[str]:
    """Correct the language, title or text (a draft before it goes out, or a typo after). Whether and since when
    it is published stays as it is: an edit does not make it the newest. Returns the fields that changed."""
    clean = _clean(values)
    changed = [name for name, value in clean.items() if getattr(announcement, name) != value]
    if changed:
        for name in changed:
            setattr(announcement, name, clean[name])
        audit.record(actor, "announcement.update", announcement, title=announcement.title, changed=changed)
    return changed


def set_published(announcement: Announcement, published: bool, actor: audit.Actor) -> None:
    """Publish (it becomes the newest: it is dated now) or withdraw it; doing what is already so changes
    nothing."""
    if announcement.published == published:
        return
    announcement.published_at = now() if published else None
    audit.record(actor, "announcement.publish" if published else "announcement.withdraw", announcement,
                 title=announcement.title)


def delete(announcement: Announcement, actor: audit.Actor) -> None:
    audit.record(actor, "announcement.delete", announcement, title=announcement.title,
                 language=announcement.language)
    db.session.delete(announcement)


def all_announcements() -> list[Announcement]:
    """For agents: every one, drafts and withdrawn ones too, newest first."""
    return list(db.session.scalars(select(Announcement).order_by(Announcement.id.desc())))


def published(language: str, limit: int = LISTED) -> list[Announcement]:
    """The published ones in `language`, most recently published first."""
    return list(db.session.scalars(
        select(Announcement).where(Announcement.language == language, Announcement.published_at.is_not(None))
        .order_by(Announcement.published_at.desc(), Announcement.id.desc()).limit(limit)))


def latest(language: str) -> list[Announcement]:
    """What the customer's home page shows."""
    return published(language, ON_HOME_PAGE)
