"""The review of a decision: what an evaluator may decide on it, what needs a written reason, what the loan's
decision is then, and what an approval grants of the interest subsidy. The records apply these rules when a
review is stored (lending.records.review_application); nothing here reads or writes a record.

- approve or decline; override: the opposite of an approve or decline recommendation (a review
  recommendation has no side to override: approve or decline it).
- Going against the recommendation needs a written reason: an override, an approval of a recommended decline
  and a decline of a recommended approval; and so does an approval of an application a hold rule held for
  review (an exception to the lending policy, such as a loan term beyond the pledge policy's cap).
- An application that a decline flag of the decision policy declined (the dishonest-debtor list: the
  joint-punishment rules bar new credit) is not approved at all; a decline limit (an arrear) is credit policy,
  which an evaluator may approve against with a reason.
- An approval grants the decision's subsidy within what the cap it was decided under leaves the enterprise for
  the year when it is approved (other approvals may have been granted since the decision).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from features.errors import Problem
from underwriting.policy import LendingPolicy

DECISIONS = ("approve", "decline", "override")
MAX_REASON_CHARS = 4000
# An override turns the recommendation to the other side: the loan's decision it makes.
OVERRIDDEN_TO = {"approve": "decline", "decline": "approve"}
# Decisions against the recommendation, which need a reason as an override does.
AGAINST = {("approve", "decline"): "approving", ("decline", "approve"): "declining"}


def outcome(decision: str | None, recommendation: str | None) -> str | None:
    """The loan's decision after a review (`decision`: approve, decline or override; None while pending):
    "approve" or "decline", None while pending.

    >>> outcome("override", "approve"), outcome("approve", "decline"), outcome(None, "approve")
    ('decline', 'approve', None)
    """
    if decision == "override":
        return OVERRIDDEN_TO.get(recommendation or "")
    return {"approve": "approve", "decline": "decline"}.get(decision or "")


def review_input(decision: Any, reason: Any) -> tuple[str | None, str | None, list[Problem]]:
    """(the decision, the reason's text stripped, the problems of the two as given): an unknown decision, a
    reason that is not text or is too long, an override without a reason."""
    problems = []
    chosen = decision if decision in DECISIONS else None
    if chosen is None:
        problems.append(Problem("decision", f"one of {', '.join(DECISIONS)}", decision))
    text = reason.strip() if isinstance(reason, str) else None
    if reason is not None and not isinstance(reason, str):
        problems.append(Problem("reason", "text", reason))
    elif text is not None and len(text) > MAX_REASON_CHARS:
        problems.append(
            Problem("reason", f"at most {MAX_REASON_CHARS} characters", f"{len(text)} characters")
        )
    if chosen == "override" and not text:
        problems.append(Problem("reason", "a reason for the override", reason))
    return chosen, text or None, problems


def review_problems(result: Mapping[str, Any], decision: str, reason: str | None) -> list[Problem]:
    """What refuses `decision` (with `reason`, stripped) on a decision's `result`, by the module's rules."""
    recommended = result.get("recommendation")
    if decision == "override" and recommended not in OVERRIDDEN_TO:
        expected = f"approve or decline (the recommendation is {recommended}: there is no side to override)"
        return [Problem("decision", expected, decision)]
    approving = outcome(decision, recommended) == "approve"
    barred = barred_by(result)
    if barred and approving:
        expected = f"decline: the lending policy's decline flag {', '.join(barred)} bars new credit"
        return [Problem("decision", expected, decision)]
    if not reason and (decision, recommended) in AGAINST:
        expected = (
            f"a reason for {AGAINST[decision, recommended]} against the recommendation to {recommended}"
        )
        return [Problem("reason", expected, reason)]
    held = [rule["feature"] for rule in result.get("held_by", [])]
    if not reason and held and approving:
        expected = f"a reason for approving an exception to the lending policy ({', '.join(held)})"
        return [Problem("reason", expected, reason)]
    return []


def barred_by(result: Mapping[str, Any]) -> list[str]:
    """The decline flags of the stored policy that declined the application: bars, which no review
    approves."""
    flags = set((result.get("policy") or {}).get("decline_flags", ()))
    return [rule["feature"] for rule in result.get("declined_by", []) if rule.get("feature") in flags]


def subsidy_year(request: Mapping[str, Any]) -> int:
    """The subsidy year of an application: the calendar year of its loan's application date."""
    return int(str(request["loan"]["application_date"])[:4])


def subsidy_grant(result: Mapping[str, Any], granted: float) -> float | None:
    """The subsidy an approval grants: the decision's, within what its cap leaves after `granted` (what the
    enterprise's approvals of the year were granted); None for a decision with no subsidy. A decision made
    before the cap was kept with it was made under the programme's cap, the default."""
    decided = result.get("interest_subsidy_cny")
    if decided is None:
        return None
    cap = float(result.get("subsidy_cap_cny", LendingPolicy().subsidy_cap_cny))
    return min(float(decided), max(cap - granted, 0.0))
