"""Serve WSGI apps on loopback ports in background threads, and read the forms of their pages."""
import threading
from html.parser import HTMLParser
from urllib.parse import urljoin

from werkzeug.serving import make_server

# How often a serving loop looks whether it was told to stop: shutdown() waits for that look, and at the
# default 0.5 s every server a test started cost it half a second at its end.
POLL_SECONDS = 0.02


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL_SECONDS,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.thread.join(5)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower(),
                               "fields": {}, "buttons": [], "checkboxes": {}})
        elif self.forms and tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text")
            if kind == "checkbox":
                self.forms[-1]["checkboxes"][attrs["name"]] = attrs.get("value") or "on"
            if kind not in ("checkbox", "radio") or "checked" in attrs:
                self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""
        elif self.forms and tag == "button" and attrs.get("name"):
            self.forms[-1]["buttons"].append((attrs["name"], attrs.get("value") or ""))


def forms_of(response) -> list[dict]:
    """The forms of an HTML response, with absolute actions and their hidden/filled fields."""
    parser = _FormParser()
    parser.feed(response.text)
    for form in parser.forms:
        form["action"] = urljoin(response.url, form["action"] or response.url)
    return parser.forms


def form_with_field(response, name: str) -> dict:
    for form in forms_of(response):
        if name in form["fields"]:
            return form
    raise AssertionError(f"no form with a field {name!r} on {response.url}")


def ticked(form: dict, name: str) -> dict:
    """The form's fields with its checkbox `name` ticked, as a person does (it must be on the form)."""
    assert name in form["checkboxes"], f"no checkbox {name!r} on the form to {form['action']}"
    return {**form["fields"], name: form["checkboxes"][name]}


def checkout_fields(response) -> dict:
    """The fields of the checkout's first payment form with the contracts accepted, as a buyer sends them."""
    for form in forms_of(response):
        if "accept_contracts" in form["checkboxes"]:
            return ticked(form, "accept_contracts")
    raise AssertionError(f"no form to accept the contracts on {response.url}")


def send_due_in(app, results: list) -> None:
    """One outbox delivery run in `app`'s own context (a thread standing for a worker); records what it sent."""
    from limonbilling.extensions import db
    from limonbilling.services import outbox

    with app.app_context():
        try:
            results.append(outbox.send_due().sent)
        finally:
            db.session.remove()
