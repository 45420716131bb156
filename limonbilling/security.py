"""Security headers on every response: a Content-Security-Policy without inline scripts, no framing.

Pages load scripts, styles and images from this site only; forms post to this
site only, except the hop to the bank's 3-D gate, whose page widens
`form-action` to the bank's origin (see `policy`).
"""
from urllib.parse import urlsplit

from flask import Flask

BASE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "frame-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def policy(form_action_to: str | None = None, **overrides: str) -> str:
    """The Content-Security-Policy text; `form_action_to` adds the origin of a URL forms may post to."""
    directives = {**BASE_POLICY, **overrides}
    if form_action_to:
        parts = urlsplit(form_action_to)
        directives["form-action"] += f" {parts.scheme}://{parts.netloc}"
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def init_app(app: Flask) -> None:
    default = policy()

    @app.after_request
    def set_security_headers(response):
        response.headers.setdefault("Content-Security-Policy", default)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return response
