"""Announcements: agents with `support` publish them; customers read those of their language on their home
page (the latest three) and on the list page, as plain text."""
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Announcement

from ..factories import make_agent, make_customer, sign_in


def _support_client(app):
    client = app.test_client()
    sign_in(client, make_agent("support"))
    return client


def _announce(client, title, language="en", body="Body", publish="y"):
    return client.post("/admin/announcements", data={"language": language, "title": title, "body": body,
                                                     "publish": publish})


def test_an_agent_publishes_withdraws_and_deletes(app):
    agent = _support_client(app)
    response = _announce(agent, "New chat hours", body="From Monday\nwe answer until 22:00.")
    assert response.status_code == 302
    page = agent.get("/admin/announcements").get_data(as_text=True)
    assert "“New chat hours” is published." in page and "From Monday\nwe answer until 22:00." in page
    announcement = db.session.scalar(select(Announcement))
    agent.post(f"/admin/announcements/{announcement.id}/published", data={})
    db.session.expire_all()
    assert announcement.published_at is None
    agent.post(f"/admin/announcements/{announcement.id}/published", data={"enabled": "y"})
    db.session.expire_all()
    assert announcement.published_at is not None
    deleted = agent.post(f"/admin/announcements/{announcement.id}/delete", follow_redirects=True)
    assert "“New chat hours” is deleted." in deleted.get_data(as_text=True)
    assert db.session.scalar(select(Announcement)) is None


def test_a_draft_is_kept_and_errors_are_shown_next_to_their_fields(app):
    agent = _support_client(app)
    _announce(agent, "Draft", publish="")
    assert db.session.scalar(select(Announcement.published_at)) is None
    page = _announce(agent, "", body="").get_data(as_text=True)
    assert "Enter a title of at most 200 characters." in page and "Enter a text of at most 5000 characters." in page
    assert page.count("is-invalid") >= 2


def test_an_agent_edits_a_draft_and_a_mistake_shows_next_to_its_field(app):
    agent = _support_client(app)
    _announce(agent, "Draft", publish="", body="First try")
    announcement = db.session.scalar(select(Announcement))
    listing = agent.get("/admin/announcements").get_data(as_text=True)
    assert f'href="/admin/announcements/{announcement.id}/edit"' in listing
    form = agent.get(f"/admin/announcements/{announcement.id}/edit").get_data(as_text=True)
    assert 'value="Draft"' in form and "First try</textarea>" in form and "Not published" in form
    refused = agent.post(f"/admin/announcements/{announcement.id}/edit",
                         data={"language": "en", "title": "", "body": "x"}).get_data(as_text=True)
    assert "Enter a title of at most 200 characters." in refused and "is-invalid" in refused
    saved = agent.post(f"/admin/announcements/{announcement.id}/edit", follow_redirects=True,
                       data={"language": "tr", "title": "Yeni saatler", "body": "Pazartesiden itibaren"})
    assert "“Yeni saatler” is saved." in saved.get_data(as_text=True)
    db.session.expire_all()
    assert (announcement.language, announcement.title, announcement.published_at) == ("tr", "Yeni saatler", None)
    same = agent.post(f"/admin/announcements/{announcement.id}/edit", follow_redirects=True,
                      data={"language": "tr", "title": "Yeni saatler", "body": "Pazartesiden itibaren"})
    assert "Nothing was changed." in same.get_data(as_text=True)
    assert agent.get("/admin/announcements/999/edit").status_code == 404


def test_announcements_need_the_support_permission(app):
    client = app.test_client()
    sign_in(client, make_agent("billing", "customers", "settings"))
    assert client.get("/admin/announcements").status_code == 403
    assert _announce(client, "Nope").status_code == 403
    assert client.get("/admin/announcements/1/edit").status_code == 403


def test_customers_read_the_latest_three_of_their_language_as_plain_text(app, clock):
    agent = _support_client(app)
    for n in range(1, 5):
        _announce(agent, f"News {n}", body="<script>alert(1)</script>")
        _announce(agent, f"Haber {n}", language="tr")
        clock.advance(minutes=1)
    _announce(agent, "Draft news", publish="")
    english, turkish = app.test_client(), app.test_client()
    sign_in(english, make_customer(language="en"))
    sign_in(turkish, make_customer(language="tr"))

    home = english.get("/").get_data(as_text=True)
    assert [title for title in ("News 1", "News 2", "News 3", "News 4") if title in home] == [
        "News 2", "News 3", "News 4"]
    assert home.index("News 4") < home.index("News 3") < home.index("News 2")
    assert "Haber" not in home and "Draft news" not in home
    assert "<script>alert(1)</script>" not in home and "&lt;script&gt;alert(1)&lt;/script&gt;" in home
    listed = english.get("/announcements").get_data(as_text=True)
    assert all(f"News {n}" in listed for n in range(1, 5)) and "Haber" not in listed

    turkish_home = turkish.get("/").get_data(as_text=True)
    assert "Haber 4" in turkish_home and "News 4" not in turkish_home and "Duyurular" in turkish_home


def test_a_customer_with_no_announcements_in_their_language_sees_no_section(app):
    agent = _support_client(app)
    _announce(agent, "Haber", language="tr")
    client = app.test_client()
    sign_in(client, make_customer(language="en"))
    assert "All announcements" not in client.get("/").get_data(as_text=True)
    assert "There are no announcements yet." in client.get("/announcements").get_data(as_text=True)
