"""One error hierarchy; each class carries the HTTP status it maps to.

Names follow BentoML 1.x (``BentoMLException``, ``BadInput``, ...) so user code that
catches them keeps working with ``import bentolite as bentoml``.
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

__all__ = [
    "BentoMLException",
    "BentoliteException",
    "InvalidArgument",
    "BadInput",
    "NotFound",
    "UnprocessableEntity",
    "PayloadTooLarge",
    "TooManyRequests",
    "ServiceUnavailable",
    "GatewayTimeout",
    "InternalServerError",
    "RemoteException",
    "BentoMLConfigException",
    "MissingDependencyException",
    "ImportServiceError",
    "StateException",
    "CLIException",
    "Unauthorized",
]


class BentoMLException(Exception):
    """Base of every bentolite error.

    Args:
        message: what went wrong, in words a user can act on.
        field: for input errors, the path of the offending field (``"body.x[2]"``).
    """

    error_code: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, Any]:
        """The JSON body of an HTTP error response."""
        body: dict[str, Any] = {"error": self.message, "type": type(self).__name__}
        if self.field is not None:
            body["field"] = self.field
        return body


BentoliteException = BentoMLException


class InvalidArgument(BentoMLException):
    error_code = HTTPStatus.BAD_REQUEST


class BadInput(InvalidArgument):
    """The request body does not match the API's input descriptor."""


class NotFound(BentoMLException):
    error_code = HTTPStatus.NOT_FOUND


class Unauthorized(BentoMLException):
    error_code = HTTPStatus.UNAUTHORIZED


class UnprocessableEntity(BentoMLException):
    error_code = HTTPStatus.UNPROCESSABLE_ENTITY


class PayloadTooLarge(BentoMLException):
    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class TooManyRequests(BentoMLException):
    error_code = HTTPStatus.TOO_MANY_REQUESTS


class ServiceUnavailable(BentoMLException):
    """A limit tripped (queue full, deadline unreachable, worker down); retry later."""

    error_code = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, message: str = "", *, retry_after_s: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class GatewayTimeout(BentoMLException):
    error_code = HTTPStatus.GATEWAY_TIMEOUT


class InternalServerError(BentoMLException):
    error_code = HTTPStatus.INTERNAL_SERVER_ERROR


class RemoteException(BentoMLException):
    """An error raised inside a runner worker, carried back with its type name."""

    error_code = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str = "", *, payload: Any = None, remote_type: str | None = None):
        super().__init__(message)
        self.payload = payload
        self.remote_type = remote_type


class BentoMLConfigException(BentoMLException):
    """A configuration value is wrong; the message names the key."""


class MissingDependencyException(BentoMLException):
    """An optional library is missing; the message names the extra to install."""


class ImportServiceError(BentoMLException):
    """The ``module:attr`` given to ``serve`` does not lead to one Service."""


class CLIException(BentoMLException):
    pass


class StateException(Exception):
    """An object is used in the wrong lifecycle state (e.g. a runner not initialised)."""

    error_code = HTTPStatus.BAD_REQUEST
