"""Absolute links for e-mails, which are also written by cron jobs and workers that have no request.

`PUBLIC_BASE_URL` (e.g. https://billing.example.com, required in production)
decides the host. Without it a request's own host is used only when the app
has `TRUSTED_HOSTS` (Flask then refuses requests for any other host, so a
forged Host header cannot lead a reset link elsewhere); otherwise, and outside
a request, http://127.0.0.1:5000.
"""
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request

FALLBACK_BASE_URL = "http://127.0.0.1:5000"


def base_url() -> str:
    configured = current_app.config.get("PUBLIC_BASE_URL")
    if configured:
        return configured.rstrip("/")
    if has_request_context() and current_app.config.get("TRUSTED_HOSTS"):
        return request.host_url.rstrip("/")
    return FALLBACK_BASE_URL


def external_url(endpoint: str, **values) -> str:
    parts = urlsplit(base_url())
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)
