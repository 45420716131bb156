"""Announcements (services/announcements.py): customers read the published ones of their language, newest
first; drafts and withdrawn ones stay with the agents."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Announcement, AuditEntry
from limonbilling.services import ValidationFailed, announcements

from ..payment_support import AGENT


def announce(title, language="en", publish=True):
    announcement = announcements.create({"language": language, "title": title, "body": f"About {title}.",
                                         "publish": publish}, None, AGENT)
    db.session.commit()
    return announcement


def titles(found):
    return [a.title for a in found]


def test_customers_see_the_latest_three_published_in_their_language(app, clock):
    for n in range(1, 5):
        announce(f"News {n}")
        announce(f"Haber {n}", language="tr")
        clock.advance(minutes=1)
    announce("Draft", publish=False)
    assert titles(announcements.latest("en")) == ["News 4", "News 3", "News 2"]
    assert titles(announcements.latest("tr")) == ["Haber 4", "Haber 3", "Haber 2"]
    assert titles(announcements.published("en")) == ["News 4", "News 3", "News 2", "News 1"]


def test_withdrawn_ones_disappear_and_publishing_again_makes_one_the_newest(app, clock):
    first, second = announce("First"), announce("Second")
    clock.advance(hours=1)
    announcements.set_published(second, False, AGENT)
    db.session.commit()
    assert titles(announcements.latest("en")) == ["First"]
    draft = announce("Draft", publish=False)
    assert draft.published_at is None and titles(announcements.latest("en")) == ["First"]
    clock.advance(hours=1)
    announcements.set_published(draft, True, AGENT)
    announcements.set_published(first, True, AGENT)  # already published: nothing changes
    db.session.commit()
    assert titles(announcements.latest("en")) == ["Draft", "First"]
    assert first.published_at == clock.now() - timedelta(hours=2)
    actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("announcement.%"))
                                      .order_by(AuditEntry.id)))
    assert actions == ["announcement.create", "announcement.create", "announcement.withdraw",
                       "announcement.create", "announcement.publish"]


def test_deleting_removes_it_and_the_audit_log_keeps_that_it_happened(app):
    gone = announce("Gone")
    announcements.delete(gone, AGENT)
    db.session.commit()
    assert db.session.scalar(select(Announcement)) is None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "announcement.delete"))
    assert entry.details == {"title": "Gone", "language": "en"}


@pytest.mark.parametrize("values, field", [
    ({"language": "de", "title": "T", "body": "B"}, "language"),
    ({"language": "en", "title": "  ", "body": "B"}, "title"),
    ({"language": "en", "title": "T" * 201, "body": "B"}, "title"),
    ({"language": "en", "title": "T", "body": ""}, "body"),
    ({"language": "en", "title": "T", "body": "B" * 5001}, "body"),
])
def test_an_announcement_needs_a_language_a_title_and_a_text_within_limits(app, values, field):
    with pytest.raises(ValidationFailed) as refused:
        announcements.create(values, None, AGENT)
    assert list(refused.value.errors) == [field]


def test_the_longest_title_and_text_fit(app):
    announcement = announcements.create({"language": "tr", "title": "T" * 200, "body": "B" * 5000}, None, AGENT)
    db.session.commit()
    assert (len(announcement.title), len(announcement.body), announcement.published) == (200, 5000, False)


def test_an_edit_corrects_the_text_and_keeps_when_it_was_published(app, clock):
    announcement = announce("Chat hours")
    published_at = announcement.published_at
    clock.advance(hours=1)
    changed = announcements.update(announcement, {"language": "tr", "title": " Sohbet saatleri ",
                                                  "body": "Pazartesiden itibaren."}, AGENT)
    db.session.commit()
    assert changed == ["language", "title", "body"]
    assert (announcement.language, announcement.title, announcement.published_at) == ("tr", "Sohbet saatleri",
                                                                                     published_at)
    assert titles(announcements.latest("tr")) == ["Sohbet saatleri"] and announcements.latest("en") == []
    assert announcements.update(announcement, {"language": "tr", "title": "Sohbet saatleri",
                                               "body": "Pazartesiden itibaren."}, AGENT) == []
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "announcement.update")).all()
    assert [e.details for e in entries] == [{"title": "Sohbet saatleri", "changed": ["language", "title", "body"]}]


def test_an_edit_is_checked_as_a_new_one_is_and_changes_nothing_when_refused(app):
    announcement = announce("Kept")
    with pytest.raises(ValidationFailed) as refused:
        announcements.update(announcement, {"language": "en", "title": "T" * 201, "body": "B"}, AGENT)
    assert list(refused.value.errors) == ["title"]
    db.session.rollback()
    assert (announcement.title, announcement.body) == ("Kept", "About Kept.")
