"""The Turkish catalogue: compiled from its source, and covering every e-mail and SMS text."""
from io import BytesIO
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "limonbilling" / "translations"


def catalogue(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=language)


def test_each_compiled_catalogue_matches_its_source():
    for source in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        compiled = BytesIO()
        with source.open("rb") as po:
            write_mo(compiled, read_po(po))
        assert source.with_suffix(".mo").read_bytes() == compiled.getvalue(), f"run `make translations` ({source})"


def test_every_e_mail_and_sms_text_is_in_turkish():
    turkish = catalogue("tr")
    texts = set()
    for folder in ("templates/emails", "templates/sms"):
        for _file, _line, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.html", "jinja2"), ("**.txt", "jinja2")]):
            texts.add(message)
    for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / "limonbilling" / "services", method_map=[("notifications.py", "python")]):
        texts.add(message)
    untranslated = sorted(text for text in texts if not (turkish.get(text) and turkish.get(text).string))
    assert len(texts) > 60 and untranslated == []


def test_the_turkish_catalogue_is_complete_and_keeps_every_placeholder():
    import re

    placeholders = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{[a-z_]+\}|%%")
    turkish = catalogue("tr")
    entries = [message for message in turkish if message.id]
    assert len(entries) > 900
    assert [message.id for message in entries if not message.string] == []  # run `make translations`, translate
    def forms(value) -> list[str]:  # a plural entry: Turkish has one form for every count (nplurals=1)
        return [value] if isinstance(value, str) else list(value)

    assert [message.id for message in entries
            if any(sorted(placeholders.findall(forms(message.id)[-1])) != sorted(placeholders.findall(translated))
                   for translated in forms(message.string))] == []


def test_every_text_in_the_code_is_in_the_catalogue():
    """A new text that `make translations` has not collected yet would show in English on a Turkish page."""
    texts = set()
    for folder, method_map in (("limonbilling", [("**.py", "python")]),
                               ("templates", [("**.html", "jinja2"), ("**.txt", "jinja2")])):
        for _file, _line, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=method_map, keywords={"_": None, "_l": None, "gettext": None,
                                                                 "lazy_gettext": None, "ngettext": (1, 2)}):
            texts.add(message if isinstance(message, str) else message[0])
    known = {message.id if isinstance(message.id, str) else message.id[0] for message in catalogue("tr")}
    assert sorted(texts - known) == []
