"""Security headers on every response: a Content-Security-Policy without inline scripts, no framing.

Pages load scripts, styles and images from this site only; forms post to this
site only, except the hop to the bank's 3-D gate, whose page widens
`form-action` to the bank's origin (see `policy`).
"""
from urllib.parse import urlsplit

from flask import Flask, abort, request

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


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def init_app(app: Flask) -> None:
    default = policy()

    @app.before_request
    def refuse_nul_characters():
        """No text of ours holds a NUL character (PostgreSQL cannot store one): refuse it at the door (400)."""
        values = [*request.args.values(), *(request.view_args or {}).values()]
        if request.method not in ("GET", "HEAD"):
            values += [*request.form.values(), request.get_json(silent=True)]
        if any(_holds_nul(value) for value in values):
            abort(400)

    hsts_seconds = app.config.get("HSTS_SECONDS") or 0

    @app.after_request
    def set_security_headers(response):
        if hsts_seconds and request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts_seconds}; includeSubDomains")
        response.headers.setdefault("Content-Security-Policy", default)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return response
