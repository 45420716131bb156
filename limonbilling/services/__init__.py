"""Business rules: plain functions over models, with no knowledge of HTTP.

Services work in the caller's database session and never commit; the view,
API handler or CLI command commits once, so a request is one unit of work.
"""


class ServiceError(Exception):
    """A refusal a person can act on: `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class ValidationFailed(ServiceError):
    """Input that breaks a rule; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("validation_failed", "Some fields are not valid.")
        self.errors = errors
