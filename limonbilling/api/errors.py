"""JSON errors with a stable code: {"error": {"code": ..., "message": ..., ...}}."""
from flask import jsonify
from werkzeug.http import HTTP_STATUS_CODES

from ..services import ServiceError, ValidationFailed

# The HTTP status of each refusal a service can raise; anything else a rule refuses is a 409.
STATUS_BY_CODE = {
    "validation_failed": 422,
    "insufficient_credits": 402,
    "department_not_enabled": 403,
    "idempotency_key": 400,
    "idempotency_key_reused": 422,  # as Stripe answers a key sent again with other parameters
}


class ApiError(Exception):
    """A request the API refuses, answered in the JSON error shape by `error_response`."""

    def __init__(self, status: int, code: str, message: str, **details):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    @classmethod
    def refusal(cls, error: ServiceError) -> "ApiError":
        """A service's refusal as the API answers it: its stable code, with the HTTP status of that code."""
        if isinstance(error, ValidationFailed):
            return cls(422, error.code, error.message, fields=error.errors)
        details = {key: value for key, value in error.details.items() if isinstance(value, (int, str))}
        return cls(STATUS_BY_CODE.get(error.code, 409), error.code, error.message, **details)

    def response(self):
        return error_response(self.status, self.code, self.message, **self.details)


def error_response(status: int, code: str, message: str, **details):
    response = jsonify({"error": {"code": code, "message": message, **details}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="limonbilling"'
    return response


def code_of(status: int) -> str:
    """The stable `code` of a plain HTTP error: its reason phrase in snake case (404 not_found,
    413 request_entity_too_large, 500 internal_server_error)."""
    return HTTP_STATUS_CODES.get(status, "error").lower().replace(" ", "_")

