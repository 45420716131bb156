"""LimonBilling: the paid VIP support billing module of a help desk."""
import os
from pathlib import Path

from flask import Flask, has_request_context, make_response, render_template, request, session
from flask_babel import format_date, format_datetime, format_timedelta, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from config import CONFIGS, INSTANCE_DIR

from .extensions import babel, csrf, db, limiter, login_manager, migrate
from .formatting import format_money
from .labels import (
    balance_reason,
    customer_decline,
    customer_invoice_status,
    customer_order_status,
    label,
    ledger_reason,
)
from .models import MAX_RECORD_ID, Language

ROOT = Path(__file__).resolve().parent.parent


class RecordIdConverter(IntegerConverter):
    """`<int:…>` in every route is a database id: a larger number is simply not found (404), never a 500."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_RECORD_ID)
        super().__init__(url_map, *args, **kwargs)


def select_locale() -> str:
    """The signed-in user's language, else the visitor's choice, else the default from the settings."""
    from .services import settings
    if has_request_context():
        for choice in (getattr(current_user, "language", None), session.get("language")):
            if Language.has(choice):
                return choice
    return settings.get("default_language")


def create_app(config=None) -> Flask:
    """Build an app.

    `config` is a config class, a name from config.CONFIGS, or a dict of
    overrides on top of the class named by LIMONBILLING_CONFIG (development
    by default).
    """
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.url_map.converters["int"] = RecordIdConverter
    overrides = {}
    if isinstance(config, dict):
        overrides = config
        config = None
    if config is None or isinstance(config, str):
        config = CONFIGS[config or os.environ.get("LIMONBILLING_CONFIG", "development")]
    app.config.from_object(config)
    app.config.update(overrides)
    if hasattr(config, "prepare"):
        config.prepare(app.config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )

    if app.config["TRUSTED_PROXIES"]:
        # Behind N proxies (nginx, a load balancer): trust their X-Forwarded-For/-Proto/-Host, no more.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    from .sqlite import configure_sqlite

    configure_sqlite(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    login_manager.blueprint_login_views = {"admin": "admin.login", "portal": "portal.login"}
    login_manager.login_message = None
    csrf.init_app(app)
    from . import throttle  # noqa: F401  registers the database:// storage before the limiter binds it

    limiter.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    from . import auth  # noqa: F401  registers the user loader
    from .sqlite import enable_sqlite_pragmas

    enable_sqlite_pragmas(app)

    from .admin import bp as admin_bp
    from .api import bp as api_bp
    from .health import bp as health_bp
    from .portal import bp as portal_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(api_bp)

    from . import security
    from .services import notifications, outbox

    notifications.subscribe()
    security.init_app(app)
    outbox.init_app(app)
    from .cli import billing_cli

    app.cli.add_command(billing_cli)
    _register_template_helpers(app)
    _register_error_handlers(app)
    return app


def _register_template_helpers(app: Flask) -> None:
    from .services import fraud

    app.jinja_env.filters["datetime"] = lambda value, fmt="medium": format_datetime(value, fmt) if value else ""
    app.jinja_env.filters["date"] = lambda value, fmt="medium": format_date(value, fmt) if value else ""
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["customer_invoice_status"] = customer_invoice_status
    app.jinja_env.filters["customer_order_status"] = customer_order_status
    app.jinja_env.filters["customer_decline"] = customer_decline
    app.jinja_env.filters["fraud_check"] = fraud.describe
    app.jinja_env.filters["ledger_reason"] = ledger_reason
    app.jinja_env.filters["balance_reason"] = balance_reason

    @app.context_processor
    def inject_globals():
        from .services import settings

        return {
            "languages": list(Language),
            "company_name": settings.get("company_name"),
            "vip_enabled": settings.vip_support_enabled(),
            "get_locale": get_locale,
        }


def _register_error_handlers(app: Flask) -> None:
    from werkzeug.exceptions import HTTPException, SecurityError

    from .api.errors import code_of, error_response

    def error_page(code: int, title: str, message: str):
        if request.path.startswith("/api/"):
            return error_response(code, code_of(code), message)
        area = "admin" if request.blueprint == "admin" else "portal"
        return render_template("error.html", area=area, code=code, title=title, message=message), code

    @app.errorhandler(400)
    def bad_request(_error):
        if isinstance(_error, SecurityError):  # a Host header not in TRUSTED_HOSTS: no page (no links) for it
            return _("This site does not answer for that host name."), 400, {"Content-Type": "text/plain"}
        return error_page(400, _("Bad request"), _("The request could not be understood. Check what you sent "
                                                   "and try again."))

    @app.errorhandler(403)
    def forbidden(_error):
        return error_page(403, _("Not allowed"), _("Your account does not have the permission for this page."))

    @app.errorhandler(404)
    def not_found(_error):
        return error_page(404, _("Page not found"), _("The page or record you asked for does not exist."))

    @app.errorhandler(405)
    def method_not_allowed(_error):
        return error_page(405, _("Not allowed here"), _("This address does not accept that kind of request."))

    @app.errorhandler(429)
    def too_many(error):
        from .throttle import retry_after

        seconds = retry_after(error)
        response = make_response(error_page(429, _("Too many attempts"), _(
            "Too many failed attempts from your address or for this account. Try again %(when)s. If you have "
            "forgotten your password, ask for a new one.", when=format_timedelta(seconds, add_direction=True))))
        response.headers["Retry-After"] = str(seconds)
        return response

    @app.errorhandler(CSRFError)
    def csrf_failed(_error):
        return error_page(
            400, _("The form has expired"), _("Go back, reload the page and send the form again.")
        )

    @app.errorhandler(413)
    def too_large(_error):
        return error_page(413, _("Too much at once"), _("What you sent is larger than this site accepts. Send "
                                                        "less, e.g. a shorter message, and try again."))

    @app.errorhandler(HTTPException)
    def other_error(error: HTTPException):
        """Any other error, an unexpected one too (a 500, logged with its traceback): the API answers its JSON
        shape with the plain HTTP description and no detail; pages keep Werkzeug's page."""
        if request.path.startswith("/api/"):
            return error_response(error.code, code_of(error.code), error.description)
        return error
