"""The records' domain errors. They subclass built-ins and become HTTP errors only in `api/`:
`PermissionDenied` 403, `NotFound` 404, `AlreadyReviewed` 409; bad values raise the shared
`features.errors.InvalidData` (422, one problem per field)."""

from __future__ import annotations


class PermissionDenied(PermissionError):
    """The caller's role does not allow the action."""


class NotFound(LookupError):
    """No record with that id (or none the caller may act on)."""


class AlreadyReviewed(ValueError):
    """The application has left pending_review: a review decides it once."""
