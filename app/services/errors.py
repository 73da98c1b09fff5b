"""Domain errors. The HTTP layer maps each to a status code and a JSON error body; the CLI prints
the message and exits non-zero. Messages are written for the user who caused them."""


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: object | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid_input"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
