"""The one exception tree of bedside.

Every error a user can cause is a ``BedsideError``; the CLI prints its message on one line and
exits with ``exit_code``, the HTTP API turns it into ``{"error": {"code", "message", "hint"}}``
with ``http_status``.

    BedsideError
    ├── WorkspaceError          no workspace, or a broken one          (exit 3, HTTP 409)
    ├── DataError               a corpus file we cannot take           (exit 4, HTTP 422)
    ├── BundleError             a model bundle we refuse               (exit 5, HTTP 422)
    ├── LimitError              submission limit or compute budget     (exit 6, HTTP 429)
    ├── AuthError               bad or missing token                   (exit 7, HTTP 401)
    ├── ForbiddenError          another origin, or no CSRF token       (exit 7, HTTP 403)
    ├── NotFoundError           no such thing (or not yours)           (exit 8, HTTP 404)
    ├── JobError                a job failed; ``error_class`` says why (exit 9, HTTP 500)
    │   └── SandboxError        isolation below the required tier      (exit 10, HTTP 503)
    └── ConfigError             a bad setting or recipe value          (exit 2, HTTP 422)

Messages follow one rule: what was expected, what was found, what to do.
"""

from __future__ import annotations


class BedsideError(Exception):
    """Base of every error bedside raises on purpose."""

    code = "bedside_error"
    exit_code = 1
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class ConfigError(BedsideError):
    code = "config_error"
    exit_code = 2
    http_status = 422


class WorkspaceError(BedsideError):
    code = "workspace_error"
    exit_code = 3
    http_status = 409


class DataError(BedsideError):
    code = "data_error"
    exit_code = 4
    http_status = 422


class BundleError(BedsideError):
    code = "bundle_error"
    exit_code = 5
    http_status = 422


class LimitError(BedsideError):
    code = "limit_error"
    exit_code = 6
    http_status = 429


class AuthError(BedsideError):
    code = "auth_error"
    exit_code = 7
    http_status = 401


class ForbiddenError(BedsideError):
    """A request refused before it reached the route: another origin, or a missing form token.
    Not an ``AuthError``: the page layer answers it with a 403 page, not a login redirect."""

    code = "forbidden"
    exit_code = 7
    http_status = 403


class NotFoundError(BedsideError):
    code = "not_found"
    exit_code = 8
    http_status = 404


class JobError(BedsideError):
    """A job failed. ``error_class`` is what a contributor may see: timeout, out_of_memory,
    invalid_output, model_error, platform_error, cancelled, budget_exhausted."""

    code = "job_error"
    exit_code = 9
    http_status = 500

    def __init__(
        self, message: str, *, error_class: str = "platform_error", hint: str | None = None
    ):
        super().__init__(message, hint=hint)
        self.error_class = error_class


class SandboxError(JobError):
    code = "sandbox_error"
    exit_code = 10
    http_status = 503

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message, error_class="platform_error", hint=hint)
