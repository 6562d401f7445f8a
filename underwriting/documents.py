"""Decisions as documents: where a decision decided again differs from the one stored, and a decision as one
flat row of a table (what `ipcredit decide` writes).

A decision's row holds every figure the service answers, under the service's own names: the result's
scalars (``pd``, ``score``, ``grade``, ``credit_line_cny``, ...), a nested object's scalars under
``parent_child`` names down to two levels (``expected_loss_split_bank``,
``valuation_bundle_pledge_value_cny``, ``policy_approve_max_pd``), and anything deeper, and every list,
as JSON text (``reasons``, ``valuation_assets``, ``valuation_bundle_liquidation_by_route``,
``explanation``); texts in one language (``recommendation_label``, each reason's ``text``), as the service
answers with ``?lang=``; and ``reason_codes`` (joined by ";", as ``ipcredit score`` writes them). A refused
application's row holds its ids and ``error``, the problems that refused it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

FLAT_LEVELS = 2  # objects flattened down to this depth; deeper ones, and lists, as JSON text
# Lists of rules or reasons: shown with their text in the language asked for, as the service shows them.
WITH_TEXT = ("reasons", "declined_by", "held_by")


def differences(stored: Any, recomputed: Any, path: str = "result") -> list[str]:
    """Where a recomputed document differs from the stored one, compared exactly (floats bit for bit,
    types included, so 1 and 1.0 differ): empty when a decision is reproduced.

    >>> differences({"pd": 0.1, "reasons": ["R1"]}, {"pd": 0.1, "reasons": ["R1"]})
    []
    >>> for line in differences({"pd": 0.1, "codes": ["R1"]}, {"pd": 0.1 + 2e-17, "codes": ["R2"], "x": 1}):
    ...     print(line)
    result.pd: stored 0.1, recomputed 0.10000000000000002
    result.codes[0]: stored 'R1', recomputed 'R2'
    result.x: stored nothing, recomputed 1
    """
    if isinstance(stored, dict) and isinstance(recomputed, dict):
        found = []
        for key in list(stored) + [k for k in recomputed if k not in stored]:
            if key not in recomputed:
                found.append(f"{path}.{key}: stored {stored[key]!r}, recomputed nothing")
            elif key not in stored:
                found.append(f"{path}.{key}: stored nothing, recomputed {recomputed[key]!r}")
            else:
                found.extend(differences(stored[key], recomputed[key], f"{path}.{key}"))
        return found
    if isinstance(stored, list) and isinstance(recomputed, list) and len(stored) == len(recomputed):
        return [
            d
            for i, (a, b) in enumerate(zip(stored, recomputed, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    if _as_json(stored) == _as_json(recomputed):
        return []
    return [f"{path}: stored {stored!r}, recomputed {recomputed!r}"]


def _as_json(value: Any) -> str:
    """The JSON text of a value (repr of each float: exact), or its repr when JSON cannot hold it."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)


def decision_row(result: Mapping[str, Any], explanation: Mapping[str, Any], language: str = "zh") -> dict:
    """One decision as one flat row (see the module docstring): texts in `language` (zh or en).

    >>> row = decision_row({"pd": 0.02, "recommendation_label": {"zh": "批准", "en": "approve"},
    ...                     "expected_loss_split": {"bank": 10.0}, "reasons": []}, {"score": {}}, "en")
    >>> row
    {'pd': 0.02, 'recommendation_label': 'approve', 'expected_loss_split_bank': 10.0, 'reasons': '[]', \
'reason_codes': '', 'explanation': '{"score": {}}'}
    """
    row: dict[str, Any] = {}
    for key, value in result.items():
        if key == "recommendation_label":
            row[key] = value[language]
        elif key in WITH_TEXT:
            row[key] = _text([{**r, "text": r[language]} for r in value])
        else:
            _flatten(key, value, row, 1)
        if key == "reasons":
            row["reason_codes"] = ";".join(r["code"] for r in value)
    row["explanation"] = _text(explanation)
    return row


def _flatten(name: str, value: Any, row: dict[str, Any], level: int) -> None:
    # documents hold plain dicts and lists (JSON values): exact type tests, cheaper than abstract ones
    if type(value) is dict and level <= FLAT_LEVELS:
        for key, inner in value.items():
            _flatten(f"{name}_{key}", inner, row, level + 1)
    elif type(value) is dict or type(value) is list:
        row[name] = _text(value)
    else:
        row[name] = value


def _text(value: Any) -> str:
    """JSON text of a document part: exact floats, Chinese as it is."""
    return json.dumps(value, ensure_ascii=False)
