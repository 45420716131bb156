"""Configuration classes; every value can be overridden from the environment.

`create_app()` picks the class named by `LIMONBILLING_CONFIG` (development,
testing, production; development by default) unless one is passed in.
"""
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("LIMONBILLING_INSTANCE", BASE_DIR / "instance"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: list[str] | None = None) -> list[str] | None:
    """A comma-separated list from the environment; an empty value means none (None)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()] or None


def _development_secret_key() -> str:
    """A random key made once and kept under instance/, so sessions survive restarts."""
    key_file = INSTANCE_DIR / "secret_key"
    if not key_file.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'limonbilling.db'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = os.environ.get("DISPLAY_TIMEZONE", "Europe/Istanbul")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    ITEMS_PER_PAGE = int(os.environ.get("ITEMS_PER_PAGE", "25"))
    # The largest request body in bytes (forms, JSON); more answers 413. The bank's callback, a few kilobytes
    # of form fields from anyone on the internet, has its own much smaller limit.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(1024 * 1024)))
    NESTPAY_CALLBACK_MAX_LENGTH = int(os.environ.get("NESTPAY_CALLBACK_MAX_LENGTH", str(16 * 1024)))
    # Files sent with tickets and chats: outside static/, never served but through the attachment views (which
    # check who asks). A request that carries them may be as large as the settings' limits allow.
    ATTACHMENTS_FOLDER = os.environ.get("ATTACHMENTS_FOLDER", str(INSTANCE_DIR / "attachments"))
    # How many proxies (nginx, a load balancer) stand in front; their X-Forwarded-* headers are trusted.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
    # Where the throttle counts, shared by every worker: database:// (a table of the app's database) or,
    # for several app servers, redis://host:6379 (docs/deployment.md). memory:// counts per process.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "database://")
    RATELIMIT_HEADERS_ENABLED = False  # the 429 page sets Retry-After itself
    # Failed sign-ins per client IP across accounts, and password-reset requests per IP.
    SIGN_IN_LIMIT_PER_IP = os.environ.get("SIGN_IN_LIMIT_PER_IP", "50 per 15 minutes")
    # KVKK archives a customer may ask for (each needs the password; wrong ones count too)
    DATA_EXPORT_LIMIT = os.environ.get("DATA_EXPORT_LIMIT", "5 per hour")
    # Sign-in lock-out per (account, client IP): free attempts, then one per window doubling from
    # SIGN_IN_LOCKOUT_SECONDS up to the maximum; a pair's count starts again a day after its first attempt.
    SIGN_IN_FREE_ATTEMPTS = int(os.environ.get("SIGN_IN_FREE_ATTEMPTS", "5"))
    SIGN_IN_LOCKOUT_SECONDS = int(os.environ.get("SIGN_IN_LOCKOUT_SECONDS", "30"))
    SIGN_IN_LOCKOUT_MAX_SECONDS = int(os.environ.get("SIGN_IN_LOCKOUT_MAX_SECONDS", "3600"))
    SIGN_IN_LOCKOUT_RESET_SECONDS = int(os.environ.get("SIGN_IN_LOCKOUT_RESET_SECONDS", str(24 * 3600)))
    # The address customers reach the app at, for links in e-mails (https://billing.example.com); required
    # in production. Without it a request's own host is used for links only if it is in TRUSTED_HOSTS
    # (Flask's setting, comma-separated in the environment: requests for other hosts answer 400).
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL")
    TRUSTED_HOSTS = _env_list("TRUSTED_HOSTS")
    HSTS_SECONDS = 0  # Strict-Transport-Security on HTTPS answers; production sets a year
    # Deliver queued e-mails and SMS from a background thread right after each commit; the
    # `billing outbox run` worker delivers them too (and retries), so this only cuts the latency.
    OUTBOX_SEND_AFTER_COMMIT = _env_bool("OUTBOX_SEND_AFTER_COMMIT", True)
    # How long a sender may hold a message before another sender may take it (a killed worker).
    OUTBOX_CLAIM_SECONDS = int(os.environ.get("OUTBOX_CLAIM_SECONDS", "300"))
    # Webhook endpoints may be on loopback, private, link-local or reserved addresses (a receiver in your own
    # network). Off by default: production refuses them (development and testing allow loopback only).
    WEBHOOKS_ALLOW_PRIVATE = _env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
    SMTP_TIMEOUT = float(os.environ.get("SMTP_TIMEOUT", "20"))
    SMS_TIMEOUT = (float(os.environ.get("SMS_CONNECT_TIMEOUT", "5")), float(os.environ.get("SMS_READ_TIMEOUT", "15")))
    # Lifetimes of the signed links sent by e-mail, in seconds.
    EMAIL_VERIFICATION_MAX_AGE = int(os.environ.get("EMAIL_VERIFICATION_MAX_AGE", str(3 * 24 * 3600)))
    PASSWORD_RESET_MAX_AGE = int(os.environ.get("PASSWORD_RESET_MAX_AGE", "3600"))
    # Seconds to wait for the bank's XML API (connect, read); a timeout makes a refund "unknown".
    NESTPAY_API_TIMEOUT = (float(os.environ.get("NESTPAY_CONNECT_TIMEOUT", "5")),
                           float(os.environ.get("NESTPAY_READ_TIMEOUT", "30")))


class DevelopmentConfig(Config):
    DEBUG = True
    TRUSTED_HOSTS = _env_list("TRUSTED_HOSTS", ["127.0.0.1", "localhost"])

    @classmethod
    def prepare(cls, config: dict) -> None:
        if not config.get("SECRET_KEY"):
            config["SECRET_KEY"] = _development_secret_key()


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret-key-not-for-production"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    WTF_CSRF_ENABLED = False
    OUTBOX_SEND_AFTER_COMMIT = False  # tests deliver explicitly, or switch it on to test it
    TRUSTED_HOSTS = ["localhost", "127.0.0.1"]
    # Requests share the test's app context and session (tests/conftest.py): on SQLite a count written
    # beside a test's open transaction would wait for it. The throttle tests use database://.
    RATELIMIT_STORAGE_URI = "memory://"


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))

    @classmethod
    def prepare(cls, config: dict) -> None:
        """Production refuses to start on unsafe defaults."""
        key = config.get("SECRET_KEY") or ""
        if len(key) < 32:
            raise RuntimeError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production"
            )
        address = urlsplit(config.get("PUBLIC_BASE_URL") or "")
        if address.scheme not in ("https", "http") or not address.netloc:
            raise RuntimeError("PUBLIC_BASE_URL must be set in production to the address customers use, "
                               "e.g. https://billing.example.com: every link in an e-mail is built from it")
        if config.get("RATELIMIT_STORAGE_URI", "").startswith("memory"):
            raise RuntimeError("RATELIMIT_STORAGE_URI must be shared by every worker in production: "
                               "database:// (the default) or redis://host:6379")


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
