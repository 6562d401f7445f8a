"""Decisions on record: applications (saved, read, listed, reviewed) and valuations, with the access rules.

- A bank (and an admin) saves applications; an evaluator does not.
- A bank reads only its own institution's applications and valuations; an evaluator and an admin read all.
  A record the caller may not see is reported exactly like one that does not exist (None), so that ids of
  other banks' records cannot be probed.
- An evaluator or an admin reviews an application once, while it is pending_review: approve, decline, or
  override (with a reason), by the review rules of underwriting.review. The status change and the review row
  are written in the caller's transaction, so they land together or not at all.

Inputs, outputs, explanation and model versions are stored as JSON exactly as given; values that JSON
cannot hold exactly (NaN, infinities, tuples, non-string keys, numpy scalars other than float64) are
refused with every bad path listed, rather than silently changed. The functions take a session and never
commit: run them inside `lending.db.transaction`. Role violations raise `PermissionDenied`, unknown ids
`NotFound`, bad arguments `features.errors.InvalidData`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from features.errors import InvalidData, Problem
from features.schema import ID_MAX_LENGTH, enterprise_key, normalised_id
from lending.errors import AlreadyDecided, AlreadyReviewed, NotFound, PermissionDenied
from lending.keys import Principal
from lending.tables import ALL_BANKS, Application, Decision, Review, Role, Status, SubsidyTotal, Valuation
from underwriting import review

__all__ = [
    "MAX_PAGE_SIZE",
    "outcome",
    "get_application",
    "get_valuation",
    "json_problems",
    "list_applications",
    "review_application",
    "save_application",
    "save_valuation",
    "subsidy_granted",
]

MAX_PAGE_SIZE = 200
MAX_JSON_DEPTH = 64
OUTCOME = {
    Decision.APPROVE: Status.APPROVED,
    Decision.DECLINE: Status.DECLINED,
    Decision.OVERRIDE: Status.OVERRIDDEN,
}
# The review decision a status records (none while pending).
DECIDED = {Status.APPROVED: "approve", Status.DECLINED: "decline", Status.OVERRIDDEN: "override"}
JSON_VALUE = "a JSON value (object with string keys, list, string, finite number, true, false or null)"


def json_problems(value: Any, path: str, depth: int = 0) -> list[Problem]:
    """Every place in `value` that JSON would not give back exactly as it is.

    >>> json_problems({"pd": 0.1, "grade": "A", "codes": [1, 2], "x": None}, "result")
    []
    >>> bad = {"pd": float("nan"), "bins": (1, 2), 3: "a"}
    >>> for problem in json_problems(bad, "result"):  # doctest: +ELLIPSIS
    ...     print(problem)
    result.pd: expected a finite number; got nan
    result.bins: expected a JSON value (...); got a tuple (1, 2) (use a list)
    result: expected string keys; got 3
    """
    if value is None or isinstance(value, bool | str | int):
        return []
    if isinstance(value, float):  # float64 included: json writes repr(), the shortest exact form
        return [] if math.isfinite(value) else [Problem(path, "a finite number", value)]
    if depth >= MAX_JSON_DEPTH:
        return [Problem(path, f"at most {MAX_JSON_DEPTH} levels of nesting", "deeper")]
    problems: list[Problem] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(Problem(path, "string keys", key))
                continue
            problems.extend(json_problems(item, f"{path}.{key}", depth + 1))
        return problems
    if isinstance(value, list):
        for i, item in enumerate(value):
            problems.extend(json_problems(item, f"{path}[{i}]", depth + 1))
        return problems
    hint = (
        " (use a list)"
        if isinstance(value, tuple)
        else " (convert it, e.g. model_dump(mode='json'), .item())"
    )
    kind = f"a {type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")
    return [Problem(path, JSON_VALUE, _Shown(f"{kind} {value!r}{hint}"))]


class _Shown(str):
    """A got-value shown as it is (no quotes) in a Problem."""

    def __repr__(self) -> str:
        return str(self)


def _documents(what: str, **documents: Any) -> None:
    problems = []
    for name, document in documents.items():
        if not isinstance(document, dict):
            problems.append(Problem(name, "a JSON object (dict)", _Shown(type(document).__name__)))
        else:
            problems.extend(json_problems(document, name))
    versions = documents.get("model_versions")
    if isinstance(versions, dict) and not versions:
        problems.append(Problem("model_versions", "the versions of the models that made the decision", {}))
    if problems:
        raise InvalidData(problems, what=what)


def _require(principal: Principal, allowed: tuple[Role, ...], action: str) -> None:
    if principal.role not in allowed:
        roles = " or ".join(r.value for r in allowed)
        raise PermissionDenied(f"{action} needs {_a(roles)} key; got {_a(principal.role.value)} key")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _visible(principal: Principal, institution_id: ColumnElement[int]) -> list[ColumnElement[bool]]:
    return [] if principal.sees_all else [institution_id == principal.institution_id]


def _uuid(value: object) -> str | None:
    """The canonical text of a UUID, or None when `value` is not one."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _lookup(document: Mapping[str, Any], key: str) -> Any:
    """document[key], else the first nested object's value for `key` (one level down), else None."""
    if key in document:
        return document[key]
    for value in document.values():
        if isinstance(value, Mapping) and key in value:
            return value[key]
    return None


def _number(value: Any, field: str, problems: list[Problem]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(Problem(field, "a finite number or nothing", value))
        return None
    return float(value)


def save_application(
    session: Session,
    principal: Principal,
    request: dict[str, Any],
    result: dict[str, Any],
    explanation: dict[str, Any],
    model_versions: dict[str, Any],
    *,
    application_id: str | None = None,
    application_ref: str | None = None,
    enterprise_id: str | None = None,
    amount_cny: float | None = None,
    grade: str | None = None,
    pd: float | None = None,
    code: dict[str, Any] | None = None,
) -> Application:
    """Store a decision as an application pending review, for the caller's institution.

    `application_ref`, the bank's own id of the application, is stored once per institution: a second
    decision on it raises AlreadyDecided (naming the stored record), also when two arrive at once.

    The filter columns default to ``request["enterprise_id"]``, ``request["amount_cny"]``,
    ``result["grade"]`` and ``result["pd"]`` (or the same key one object down, e.g.
    ``request["loan"]["amount_cny"]``); pass them to say otherwise. `application_id` (a UUID) defaults to
    a new random one. `code`: the code that decided (models.lifecycle.code_version), kept beside the model
    versions.
    """
    _require(principal, (Role.BANK, Role.ADMIN), "saving an application")
    _documents(
        "application record",
        request=request,
        result=result,
        explanation=explanation,
        model_versions=model_versions,
        **({"code": code} if code is not None else {}),
    )
    problems: list[Problem] = []
    record_id = str(uuid.uuid4()) if application_id is None else _uuid(application_id)
    if record_id is None:
        problems.append(Problem("application_id", "a UUID", application_id))
    enterprise = enterprise_id if enterprise_id is not None else _lookup(request, "enterprise_id")
    if enterprise is not None and not (
        isinstance(enterprise, str | int) and 0 < len(str(enterprise)) <= ID_MAX_LENGTH
    ):
        problems.append(Problem("enterprise_id", f"an id of 1 to {ID_MAX_LENGTH} characters", enterprise))
        enterprise = None
    graded = grade if grade is not None else _lookup(result, "grade")
    if graded is not None and not (isinstance(graded, str) and 0 < len(graded) <= 8):
        problems.append(Problem("grade", "a grade of 1 to 8 characters", graded))
        graded = None
    amount = _number(
        amount_cny if amount_cny is not None else _lookup(request, "amount_cny"), "amount_cny", problems
    )
    probability = _number(pd if pd is not None else _lookup(result, "pd"), "pd", problems)
    if application_ref is not None and not (
        isinstance(application_ref, str) and 0 < len(application_ref) <= ID_MAX_LENGTH
    ):
        expected = f"an id of 1 to {ID_MAX_LENGTH} characters"
        problems.append(Problem("application_ref", expected, application_ref))
    if problems:
        raise InvalidData(problems, what="application record")
    if application_ref is not None:
        _check_undecided(session, principal, application_ref)

    application = Application(
        id=record_id,
        institution_id=principal.institution_id,
        status=Status.PENDING_REVIEW,
        request=request,
        result=result,
        explanation=explanation,
        model_versions=model_versions,
        enterprise_id=None if enterprise is None else enterprise_key(str(enterprise)),
        amount_cny=amount,
        grade=graded,
        pd=probability,
        reviews=[],
        application_ref=application_ref,
        code=code,
    )
    session.add(application)
    try:
        session.flush()
    except IntegrityError as e:  # the same id decided by another request at the same moment
        if application_ref is None:
            raise
        raise AlreadyDecided(application_ref) from e
    return application


def _reviewed_already(application: Application) -> AlreadyReviewed:
    return AlreadyReviewed(
        f"application {application.id} is {application.status.value}; "
        "only pending_review applications can be reviewed"
    )


def outcome(status: Status, recommendation: str | None) -> str | None:
    """The loan's decision after review, "approve" or "decline"; None while pending (underwriting.review).

    >>> outcome(Status.OVERRIDDEN, "approve"), outcome(Status.APPROVED, "decline")
    ('decline', 'approve')
    >>> outcome(Status.PENDING_REVIEW, "approve") is None
    True
    """
    return review.outcome(DECIDED.get(status), recommendation)


def _check_undecided(session: Session, principal: Principal, application_ref: str) -> None:
    stored = session.scalars(
        select(Application.id).where(
            Application.institution_id == principal.institution_id,
            Application.application_ref == application_ref,
        )
    ).first()
    if stored is not None:
        raise AlreadyDecided(application_ref, stored)


def get_application(session: Session, principal: Principal, application_id: str) -> Application | None:
    """The application with that id, with its reviews; None when there is none the caller may see."""
    key = _uuid(application_id)
    if key is None:
        return None
    query = (
        select(Application)
        .where(Application.id == key, *_visible(principal, Application.institution_id))
        .options(selectinload(Application.reviews))
    )
    return session.scalars(query).one_or_none()


def _aware(value: object, field: str, problems: list[Problem]) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        problems.append(Problem(field, "a timezone-aware datetime or nothing", value))
        return None
    return value


def list_applications(
    session: Session,
    principal: Principal,
    status: Status | str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    page: int = 1,
    page_size: int = 50,
    *,
    enterprise_id: str | None = None,
    application_ref: str | None = None,
) -> tuple[list[Application], int]:
    """One page of the applications the caller may see, newest first, and how many there are in all.

    Filters: `status`; `created_from` (inclusive) and `created_to` (exclusive), timezone-aware;
    `enterprise_id`; `application_ref` (the bank's own application id). Pages count from 1; `page_size`
    above 200 is capped to 200.
    """
    problems: list[Problem] = []
    wanted = None
    if status is not None:
        try:
            wanted = Status(status)
        except ValueError:
            problems.append(Problem("status", f"one of {', '.join(s.value for s in Status)}", status))
    start = _aware(created_from, "created_from", problems)
    end = _aware(created_to, "created_to", problems)
    if start is not None and end is not None and start > end:
        problems.append(
            Problem(
                "created_to",
                f"a time at or after created_from ({start.isoformat()})",
                _Shown(end.isoformat()),
            )
        )
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        problems.append(Problem("page", "an integer from 1", page))
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        problems.append(
            Problem("page_size", f"an integer from 1 (at most {MAX_PAGE_SIZE} are returned)", page_size)
        )
    if problems:
        raise InvalidData(problems, what="application listing")

    conditions = _visible(principal, Application.institution_id)
    if wanted is not None:
        conditions.append(Application.status == wanted)
    if start is not None:
        conditions.append(Application.created_at >= start)
    if end is not None:
        conditions.append(Application.created_at < end)
    if enterprise_id is not None:
        conditions.append(Application.enterprise_id == enterprise_key(str(enterprise_id)))
    if application_ref is not None:
        conditions.append(Application.application_ref == normalised_id(str(application_ref)))

    size = min(page_size, MAX_PAGE_SIZE)
    total = session.scalar(select(func.count()).select_from(Application).where(*conditions)) or 0
    items = session.scalars(
        select(Application)
        .where(*conditions)
        .order_by(Application.created_at.desc(), Application.id.desc())
        .limit(size)
        .offset((page - 1) * size)
        .options(selectinload(Application.reviews))
    ).all()
    return list(items), total


def review_application(
    session: Session,
    principal: Principal,
    application_id: str,
    decision: Decision | str,
    reason: str | None = None,
) -> Review:
    """Decide a pending application: approve, decline or override, by the review rules (underwriting.review:
    what needs a written reason, what no review approves, what an approval grants). Sets the status
    (approved, declined, overridden) and stores the review, both in the caller's transaction.

    Raises `PermissionDenied` for a bank key, `NotFound` for an unknown id, `AlreadyReviewed` when the
    application is no longer pending (two reviewers at once: the second gets this), `InvalidData` for an
    unknown decision or a missing reason.
    """
    _require(principal, (Role.EVALUATOR, Role.ADMIN), "reviewing an application")
    chosen, text, problems = review.review_input(getattr(decision, "value", decision), reason)
    if text is not None and "\x00" in text:  # PostgreSQL's text holds no NUL: refused on both backends
        expected = "text without NUL characters (U+0000): the records cannot store them"
        problems.append(Problem("reason", expected, text))
    if problems:
        raise InvalidData(problems, what="review")
    assert chosen is not None

    key = _uuid(application_id)
    application = None if key is None else session.get(Application, key)
    if application is None:
        raise NotFound(f"no application {application_id!r}")
    if application.status is not Status.PENDING_REVIEW:
        raise _reviewed_already(application)
    problems = review.review_problems(application.result, chosen, text)
    if problems:
        raise InvalidData(problems, what="review")
    chosen_decision = Decision(chosen)
    approving = review.outcome(chosen, application.result.get("recommendation")) == "approve"
    # An approval grants the subsidy; the enterprise's applications are locked first (before this one's row
    # is updated: two approvals at once would otherwise each hold a row the other waits for).
    grant = _subsidy_grant(session, application) if approving else (None, None)
    # Conditional on the status still being pending: of two concurrent reviews exactly one succeeds.
    changed = session.execute(
        update(Application)
        .where(Application.id == key, Application.status == Status.PENDING_REVIEW)
        .values(status=OUTCOME[chosen_decision])
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        session.refresh(application)
        raise _reviewed_already(application)
    set_committed_value(application, "status", OUTCOME[chosen_decision])  # as written by the update above
    stored = Review(reviewer_key_id=principal.key_id, decision=chosen_decision, reason=text)
    stored.interest_subsidy_cny, stored.subsidy_year = grant
    application.reviews.append(stored)
    _add_to_totals(session, application, *grant)
    session.flush()
    return stored


# A unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters of this set, the same at every
# bank, the last a check character over the first 17.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def is_uscc(enterprise_id: str) -> bool:
    """Whether an id is a unified social credit code, its check character included.

    >>> is_uscc("91350100M000100Y43"), is_uscc("100000000000000001")
    (True, False)
    """
    code = enterprise_key(enterprise_id)  # "９１３５..." (full width) and lower case are the code too
    if len(code) != 18 or any(c not in _USCC_CHARS for c in code):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return code[17] == _USCC_CHARS[(31 - total % 31) % 31]


def _subsidy_scope(enterprise_id: str, institution_id: int) -> int:
    """Whose approvals count against the cap: every bank's for a unified social credit code (the programme's
    cap is per enterprise), else the bank's own (a bank's internal id may name another enterprise)."""
    return ALL_BANKS if is_uscc(enterprise_id) else institution_id


def _total_key(enterprise: str, year: int, scope: int) -> list[ColumnElement[bool]]:
    return [
        SubsidyTotal.enterprise_id == enterprise,
        SubsidyTotal.year == year,
        SubsidyTotal.institution_id == scope,
    ]


def subsidy_granted(
    session: Session, enterprise_id: str, year: int, institution_id: int, *, lock: bool = False
) -> float:
    """CNY of interest subsidy granted to the enterprise for the year: the sum over its approvals, at every
    bank when `enterprise_id` is a unified social credit code (`is_uscc`), else at `institution_id`'s only.
    One row of subsidy_totals, whatever the enterprise's history.

    With `lock`, the enterprise's totals for the year are created when missing and locked (on PostgreSQL)
    until the transaction ends, so that two approvals at once cannot both take what is left; SQLite's
    transactions take the write lock as they begin. The all-banks row is locked first, by every approval of
    the enterprise: no two wait on each other in a circle."""
    enterprise = enterprise_key(enterprise_id)
    scope = _subsidy_scope(enterprise_id, institution_id)
    if lock:
        _lock_totals(session, enterprise, year, institution_id)
    granted = session.scalar(select(SubsidyTotal.granted_cny).where(*_total_key(enterprise, year, scope)))
    return float(granted or 0.0)


def _lock_totals(session: Session, enterprise: str, year: int, institution_id: int) -> None:
    scopes = (ALL_BANKS, institution_id)
    rows = [
        {"enterprise_id": enterprise, "year": year, "institution_id": s, "granted_cny": 0.0} for s in scopes
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(SubsidyTotal).values(rows).on_conflict_do_nothing())
    session.execute(
        select(SubsidyTotal.institution_id)
        .where(SubsidyTotal.enterprise_id == enterprise, SubsidyTotal.year == year)
        .where(SubsidyTotal.institution_id.in_(scopes))
        .order_by(SubsidyTotal.institution_id)
        .with_for_update()
    )


def _subsidy_grant(session: Session, application: Application) -> tuple[float | None, int | None]:
    """(the subsidy an approval grants, its year: underwriting.review.subsidy_grant, with what the
    enterprise's approvals of the year were granted read under lock); (None, None) for a record with no
    subsidy."""
    if application.result.get("interest_subsidy_cny") is None or application.enterprise_id is None:
        return None, None
    year = review.subsidy_year(application.request)
    granted = subsidy_granted(session, application.enterprise_id, year, application.institution_id, lock=True)
    return review.subsidy_grant(application.result, granted), year


def _add_to_totals(session: Session, application: Application, grant: float | None, year: int | None) -> None:
    """An approval's grant added to the enterprise's totals for the year, at its bank and at all banks (the
    rows `_subsidy_grant` locked)."""
    if not grant or year is None or application.enterprise_id is None:
        return
    session.execute(
        update(SubsidyTotal)
        .where(SubsidyTotal.enterprise_id == application.enterprise_id, SubsidyTotal.year == year)
        .where(SubsidyTotal.institution_id.in_((ALL_BANKS, application.institution_id)))
        .values(granted_cny=SubsidyTotal.granted_cny + grant)
        .execution_options(synchronize_session=False)
    )


def save_valuation(
    session: Session,
    principal: Principal,
    request: dict[str, Any],
    result: dict[str, Any],
    model_versions: dict[str, Any],
    *,
    valuation_id: str | None = None,
    code: dict[str, Any] | None = None,
) -> Valuation:
    """Store a valuation (any role may value assets) for the caller's institution, with the code that made
    it when given (as save_application)."""
    _documents(
        "valuation record",
        request=request,
        result=result,
        model_versions=model_versions,
        **({"code": code} if code is not None else {}),
    )
    record_id = str(uuid.uuid4()) if valuation_id is None else _uuid(valuation_id)
    if record_id is None:
        raise InvalidData([Problem("valuation_id", "a UUID", valuation_id)], what="valuation record")
    valuation = Valuation(
        id=record_id,
        institution_id=principal.institution_id,
        request=request,
        result=result,
        model_versions=model_versions,
        code=code,
    )
    session.add(valuation)
    session.flush()
    return valuation


def get_valuation(session: Session, principal: Principal, valuation_id: str) -> Valuation | None:
    """The valuation with that id; None when there is none the caller may see."""
    key = _uuid(valuation_id)
    if key is None:
        return None
    query = select(Valuation).where(Valuation.id == key, *_visible(principal, Valuation.institution_id))
    return session.scalars(query).one_or_none()
