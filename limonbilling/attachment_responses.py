"""The one way an attachment leaves the server, for customers and agents alike (the views decide who may).

The content type comes from the kind its content was recognised as at upload, never from its name; images
may show in the browser, a PDF is always a download; `nosniff` and a sandboxing Content-Security-Policy keep
the browser from running anything in it, whatever it holds.
"""
from flask import abort, send_file

from .models import Attachment
from .services.attachments import path_of

FILE_POLICY = "default-src 'none'; img-src 'self'; frame-ancestors 'none'; sandbox"


def attachment_response(attachment: Attachment | None):
    """The file, or 404 for no attachment (not found, or not the asker's) and for a file missing on disk."""
    if attachment is None:
        abort(404)
    path = path_of(attachment)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=attachment.content_type, as_attachment=not attachment.is_image,
                         download_name=attachment.original_name, max_age=0, etag=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = FILE_POLICY
    return response
