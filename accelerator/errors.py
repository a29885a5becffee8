"""Domain exceptions raised by services. They know nothing of HTTP;
accelerator.api_errors maps them to status codes."""


class DomainError(Exception):
    """Base of every failure a user can cause and fix. `detail` says what and how."""

    code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class InvalidInput(DomainError):
    code = "invalid"


class TooLarge(InvalidInput):
    """A request body over a size limit (413)."""

    code = "too_large"


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class AuthFailed(DomainError):
    code = "not_authenticated"


class RangeNotSatisfiable(InvalidInput):
    """A byte range that starts at or after the end of what it asks for (HTTP 416)."""

    code = "range_not_satisfiable"
