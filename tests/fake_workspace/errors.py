"""Databricks REST error bodies, `{"error_code": ..., "message": ...}`, with the real API's status codes."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer; `error_code` is usually a string, but the real auth layer sends a number (403)."""

    def __init__(
        self, status: int, error_code: str | int, message: str, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def invalid_state(message: str) -> ApiError:
    return ApiError(400, "INVALID_STATE", message)


def missing_field(name: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", f"Missing required field: {name}")


def does_not_exist(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def already_exists(message: str) -> ApiError:
    return ApiError(400, "RESOURCE_ALREADY_EXISTS", message)


# What a fault with only a status answers with, as the real API does for that status.
DEFAULT_ERROR_CODES = {
    400: ("INVALID_PARAMETER_VALUE", "Invalid parameter value (injected fault)"),
    401: (401, "Credential was not sent or was of an unsupported type for this API."),
    403: ("PERMISSION_DENIED", "Permission denied (injected fault)"),
    404: ("RESOURCE_DOES_NOT_EXIST", "Resource does not exist (injected fault)"),
    409: ("RESOURCE_CONFLICT", "Conflict (injected fault)"),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."),
    500: ("INTERNAL_ERROR", "Internal error (injected fault)"),
    502: ("BAD_GATEWAY", "Bad gateway (injected fault)"),
    503: (
        "TEMPORARILY_UNAVAILABLE",
        "The service at this path is temporarily unavailable. Please try again later.",
    ),
    504: ("DEADLINE_EXCEEDED", "Deadline exceeded (injected fault)"),
}
