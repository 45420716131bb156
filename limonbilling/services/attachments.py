"""Files sent with ticket and chat messages (DT: identity documents): images and PDF only, limited in size and
number by the settings, kept outside `static/` under random names, handed out only to their customer and to
agents with `support`.

A file is what its first bytes say it is, never what its name or the browser claims: an HTML page or an SVG
called `photo.png` is refused. How a file is served follows from that kind alone (pages: `Attachment`).
"""
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Agent, Attachment, AttachmentKind, Conversation, Customer, Message, Permission
from . import ValidationFailed, settings

MEGABYTE = 1024 * 1024
MAX_NAME_LENGTH = 120
EXTENSIONS = {AttachmentKind.PNG: ("png",), AttachmentKind.JPEG: ("jpg", "jpeg"), AttachmentKind.WEBP: ("webp",),
              AttachmentKind.PDF: ("pdf",)}
_WRITTEN = "limonbilling.attachments_written"  # key in Session.info: files this transaction wrote
_REMOVED = "limonbilling.attachments_removed"  # files whose rows this transaction deleted


@dataclass(frozen=True)
class Upload:
    """A file as the sender sent it: the name they gave it and its bytes."""

    name: str
    data: bytes


def max_bytes() -> int:
    """The largest file (Settings → Licence / Modules); a file of exactly this size passes."""
    return settings.get("attachment_max_mb") * MEGABYTE


def max_count() -> int:
    return settings.get("attachment_max_count")


def limits_hint() -> str:
    return ngettext("PNG, JPEG or WebP images or PDF documents: at most %(num)d file of %(size)d MB.",
                    "PNG, JPEG or WebP images or PDF documents: at most %(num)d files of %(size)d MB each.",
                    max_count(), size=settings.get("attachment_max_mb"))


def request_limit() -> int:
    """The largest request body a form with files may send: one file more than allowed, each of the largest
    size, and room for the text, so that one too many or one too large is refused with its reason, not 413."""
    return (max_count() + 1) * max_bytes() + MEGABYTE


def sniff(data: bytes) -> AttachmentKind | None:
    """The kind the content is, by its magic bytes, or None for anything else (HTML, SVG, scripts …)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return AttachmentKind.PNG
    if data.startswith(b"\xff\xd8\xff"):
        return AttachmentKind.JPEG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return AttachmentKind.WEBP
    if data.startswith(b"%PDF-"):
        return AttachmentKind.PDF
    return None


def clean_name(name: str, kind: AttachmentKind) -> str:
    """The sender's file name as a label only: no folders, no control or quoting characters, at most 120
    characters, ending in the kind's extension (so a download opens as what it is)."""
    name = unicodedata.normalize("NFC", re.split(r"[\\/]", name or "")[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"[^\w .()+,-]", "_", name)
    name = re.sub(r"\s+", " ", name).strip(" .") or "attachment"
    stem, dot, extension = name.rpartition(".")
    if not dot or extension.lower() not in EXTENSIONS[kind]:
        stem, extension = name, EXTENSIONS[kind][0]
    return f"{stem[:MAX_NAME_LENGTH - len(extension) - 1]}.{extension}"


def check(uploads: list[Upload]) -> list[tuple[Upload, AttachmentKind]]:
    """Each upload with its kind, if all of them may be sent together; else ValidationFailed on `attachments`
    saying which file is wrong and why."""
    errors = []
    count, largest = max_count(), max_bytes()
    if len(uploads) > count:
        errors.append(ngettext("Attach at most %(num)d file to a message.",
                               "Attach at most %(num)d files to a message.", count))
    checked = []
    for upload in uploads:
        kind = sniff(upload.data)
        if len(upload.data) > largest:
            errors.append(_("%(name)s is larger than %(size)d MB.", name=upload.name,
                            size=settings.get("attachment_max_mb")))
        elif kind is None:
            errors.append(_("%(name)s is not a PNG, JPEG or WebP image or a PDF document.", name=upload.name))
        else:
            checked.append((upload, kind))
    if errors:
        raise ValidationFailed({"attachments": errors})
    return checked


def folder() -> Path:
    return Path(current_app.config["ATTACHMENTS_FOLDER"])


def path_of(attachment: Attachment) -> Path:
    return folder() / attachment.stored_name


def attach(message: Message, checked: list[tuple[Upload, AttachmentKind]]) -> list[Attachment]:
    """Write the checked files under new random names and record them with the message. A transaction that
    rolls back removes the files it wrote (`_forget_or_remove`)."""
    written = []
    if checked:
        folder().mkdir(parents=True, exist_ok=True)
    for upload, kind in checked:
        stored_name = secrets.token_hex(16)
        descriptor = os.open(folder() / stored_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        db.session.info.setdefault(_WRITTEN, []).append(folder() / stored_name)
        with os.fdopen(descriptor, "wb") as file:
            file.write(upload.data)
        attachment = Attachment(kind=kind, size_bytes=len(upload.data), original_name=clean_name(upload.name, kind),
                                stored_name=stored_name, created_at=message.created_at)
        message.attachments.append(attachment)
        written.append(attachment)
    return written


def remove_after_commit(paths: list[Path]) -> None:
    """Delete these files once the transaction that deleted their rows commits (kept if it rolls back)."""
    db.session.info.setdefault(_REMOVED, []).extend(paths)


@event.listens_for(Session, "after_commit")
def _forget_written(session: Session) -> None:
    session.info.pop(_WRITTEN, None)
    for path in session.info.pop(_REMOVED, []):
        path.unlink(missing_ok=True)


@event.listens_for(Session, "after_rollback")
def _remove_written(session: Session) -> None:
    """Files of a refused message (or a failed commit) do not stay on disk without their row."""
    session.info.pop(_REMOVED, None)
    for path in session.info.pop(_WRITTEN, []):
        path.unlink(missing_ok=True)


def _with_conversation(attachment_id: int):
    return select(Attachment).join(Attachment.message).join(Message.conversation).where(Attachment.id == attachment_id)


def for_customer(customer: Customer, attachment_id: int) -> Attachment | None:
    """The attachment if it is in one of the customer's own conversations; another's is None, as a missing one."""
    return db.session.scalar(_with_conversation(attachment_id).where(Conversation.customer_id == customer.id))


def for_agent(agent: Agent, attachment_id: int) -> Attachment | None:
    """The attachment if the agent may read tickets and chats (`support`); otherwise None, as a missing one."""
    if not agent.can(Permission.SUPPORT):
        return None
    return db.session.scalar(_with_conversation(attachment_id))
