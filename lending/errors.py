"""The records' domain errors. They subclass built-ins and become HTTP errors only in `api/`:
`PermissionDenied` 403, `NotFound` 404, `AlreadyReviewed` and `AlreadyDecided` 409; bad values raise the
shared `features.errors.InvalidData` (422, one problem per field)."""

from __future__ import annotations


class PermissionDenied(PermissionError):
    """The caller's role does not allow the action."""


class NotFound(LookupError):
    """No record with that id (or none the caller may act on)."""


class AlreadyReviewed(ValueError):
    """The application has left pending_review: a review decides it once."""


class AlreadyDecided(ValueError):
    """The institution has already stored a decision on an application with that id."""

    def __init__(self, application_ref: str, record_id: str | None = None):
        where = (
            f"record {record_id} (GET /v1/applications/{record_id})"
            if record_id is not None
            else "by another request at the same moment"
        )
        super().__init__(
            f"application {application_ref!r} is already decided: {where}; "
            "send a new application_id to decide it again"
        )
        self.record_id = record_id
