"""The one error hierarchy. `web/` maps each class to an HTTP status and code once."""
from __future__ import annotations


class TrajectError(Exception):
    code = "error"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationError(TrajectError):
    code = "validation_error"


class NotFound(TrajectError):
    code = "not_found"


class Forbidden(TrajectError):
    code = "forbidden"


class TransitionNotAllowed(TrajectError):
    code = "transition_not_allowed"


class VersionConflict(TrajectError):
    code = "version_conflict"


class PreconditionFailed(TrajectError):
    code = "precondition_failed"

    def __init__(self, unmet: list[dict], message: str | None = None):
        super().__init__(message or "; ".join(u["message"] for u in unmet), {"unmet": unmet})
        self.unmet = unmet


class DefinitionError(TrajectError):
    """A workflow definition file is invalid: names the file, the path inside it and what is wrong."""
    code = "definition_error"
