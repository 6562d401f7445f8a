"""The model card of a registered version: Markdown, logged to the version's run as ``model_card.md``.

Rendered from the facts `models.lifecycle` gathers at training time (also logged, as ``model_card.json``,
so that the card can be rendered again): purpose, intended users, data (with its fingerprint), features
with their monotone directions, held-out metrics, the promotion gate's verdict, limits, and the governance
record that the PBoC standard JR/T 0221-2021 (人工智能算法金融应用评价规范, Evaluation specification of
artificial intelligence algorithm in financial application) asks for under algorithm traceability (§6.4:
training data source, acquisition time, volume, sampling method and checksum; modelling environment,
operator, timestamps and code) and internal control (§6.5: internal review before the algorithm goes live).

The review is left **pending** at training time: the card says so until a person signs with
`sign_review(name, version, reviewer)`, which records the reviewer and date as version tags
(``review.status``, ``review.by``, ``review.date``, ``review.note``) and logs the card again; a later
sign-off keeps the earlier ones in the card (``earlier_reviews``), never overwriting them.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.artifacts import download_artifacts

from models.store import mlflow_client, model_version

CARD_FILE = "model_card.md"
FACTS_FILE = "model_card.json"
PENDING = "PENDING"


def render(facts: dict[str, Any]) -> str:
    """The card as Markdown from the facts (see models.lifecycle for their keys)."""
    d = facts
    data, env, code, review = d["data"], d["environment"], d["code"], d.get("review") or {}
    lines = [
        f"# Model card: {d['name']} version {d['version']}",
        "",
        f"Task: **{d['task']}**. Run `{d['run_id']}`. Registered {d['registered_at']}. "
        f"Load with `models:/{d['name']}/{d['version']}`.",
        "",
        "## Purpose",
        "",
        d["purpose"],
        "",
        "## Intended users",
        "",
        d["users"],
        "",
        "## Data",
        "",
        _table(
            ["item", "value"],
            [
                ["source", _source(data["source"])],
                ["rows", f"{data['rows']:,}"],
                ["columns", str(data["columns"])],
                ["time span", _span(data)],
                ["SHA-256 of the table", f"`{data['sha256']}`"],
                ["sampling", d["sampling"]],
            ],
        ),
        "",
        "## Features",
        "",
        f"Target `{d['spec']['target']}`"
        + (f", id `{d['spec']['id']}`" if d["spec"].get("id") else "")
        + ".",
        "",
        _table(
            ["feature", "type", "monotone direction"],
            [[f"`{f['name']}`", f["type"], f.get("monotone") or "free"] for f in d["spec"]["features"]],
        ),
        "",
        "## Held-out metrics",
        "",
        _table(["metric", "value"], [[f"`{k}`", _number(v)] for k, v in d["metrics"].items()]),
        "",
        *_weaknesses(d["metrics"]),
        "## Promotion gate",
        "",
        _gate(d["gate"]),
        "",
        *[
            f"Made the champion by hand on {p['time']} by {p['by']}: {p['reason']} (the gate's decision "
            "above stands as it was).\n"
            for p in d.get("manual_promotions", [])
        ],
        "## Limits",
        "",
        *[f"- {limit}" for limit in d["limits"]],
        "",
        "## Governance record (JR/T 0221-2021)",
        "",
        _table(
            ["requirement", "record"],
            [
                ["training data source (§6.4)", _source(data["source"])],
                [
                    "training data acquisition time (§6.4)",
                    str(data["source"].get("acquired", "not given by the operator")),
                ],
                ["training data volume (§6.4)", f"{data['rows']:,} rows x {data['columns']} columns"],
                ["sampling method (§6.4)", d["sampling"]],
                ["checksum of the training data (§6.4)", f"SHA-256 `{data['sha256']}`"],
                ["code version (§6.4)", _code(code)],
                ["modelling environment (§6.4)", _environment(env)],
                ["operator (§6.4)", d["operator"]],
                ["modelling start and end (§6.4)", f"{d['trained_from']} to {d['trained_until']}"],
                [
                    "deployment record (§6.4)",
                    "champion alias moves: `ipcredit models history " + d["name"] + "`",
                ],
                ["review before launch (§6.5)", _review(review)],
                *(
                    [["earlier reviews (§6.5)", "; ".join(_review(r) for r in d["earlier_reviews"])]]
                    if d.get("earlier_reviews")
                    else []
                ),
            ],
        ),
        "",
    ]
    if review.get("status") != "signed":
        lines += [
            "> **Review pending.** No person has reviewed this version yet. The fields *reviewed by*",
            "> and *date* stay PENDING until a reviewer signs with",
            "> `ipcredit models review NAME VERSION --by REVIEWER` (or `models.card.sign_review`).",
            "",
        ]
    return "\n".join(lines)


def sign_review(name: str, version: str, reviewer: str, note: str = "", date: str | None = None) -> str:
    """Record that `reviewer` reviewed version `version` of `name` (tags and a re-rendered card); returns
    the new card."""
    if not reviewer.strip():
        raise ValueError("sign_review needs the reviewer's name")
    date = date or _dt.date.today().isoformat()

    def signed(facts: dict[str, Any]) -> None:
        if facts.get("review", {}).get("status") == "signed":  # kept on record, not overwritten
            facts["earlier_reviews"] = [*facts.get("earlier_reviews", []), facts["review"]]
        facts["review"] = {"status": "signed", "by": reviewer, "date": date, "note": note}

    card, facts = _amend(name, version, signed)
    for key, value in facts["review"].items():
        mlflow_client().set_model_version_tag(name, str(version), f"review.{key}", value or "")
    return card


def note_promotion(name: str, version: str, reason: str, operator: str, time: str) -> str:
    """Record on the card of version `version` that people made it the champion by hand (without the gate,
    or against it): when, by whom and why; the gate's own decision stays as it was. Returns the new card."""

    def promoted(facts: dict[str, Any]) -> None:
        entry = {"time": time, "by": operator, "reason": reason}
        facts["manual_promotions"] = [*facts.get("manual_promotions", []), entry]

    return _amend(name, version, promoted)[0]


def _amend(name: str, version: str, change: Callable[[dict[str, Any]], None]) -> tuple[str, dict[str, Any]]:
    """Change the facts logged with a version's run, render its card again and log both; (card, facts)."""
    client = mlflow_client()
    mv = model_version(name, version)  # ModelNotFound for a version the registry does not have
    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifacts(run_id=mv.run_id, artifact_path=FACTS_FILE, dst_path=tmp)
        facts = json.loads(Path(path).read_text(encoding="utf-8"))
        change(facts)
        card = write(facts, Path(tmp) / "amended")
        for file in (CARD_FILE, FACTS_FILE):
            client.log_artifact(mv.run_id, str(Path(tmp) / "amended" / file))
    return card, facts


def write(facts: dict[str, Any], folder: str | Path) -> str:
    """Write model_card.md and model_card.json into `folder`; returns the Markdown."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    card = render(facts)
    (folder / CARD_FILE).write_text(card, encoding="utf-8")
    (folder / FACTS_FILE).write_text(json.dumps(facts, indent=2, default=str) + "\n", encoding="utf-8")
    return card


# ---------------------------------------------------------------- pieces


def _table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _source(source: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in source.items()) or "not given"


def _span(data: dict) -> str:
    if not data.get("date_column"):
        return "no date column"
    return f"`{data['date_column']}` from {data['date_from']} to {data['date_to']}"


def _code(code: dict) -> str:
    dirty = " with uncommitted changes" if code.get("dirty") else ""
    return (
        f"git commit `{code.get('commit', 'unknown')}`{dirty}; ipcredit {code.get('package_version', '?')}; "
        f"SHA-256 of the code logged with the model (code/) `{code.get('code_sha256', '?')}`"
    )


def _environment(env: dict) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
    return f"Python {env.get('python')} on {env.get('platform')} ({env.get('cpus')} CPUs); {packages}"


def _review(review: dict) -> str:
    if review.get("status") == "signed":
        note = f"; {review['note']}" if review.get("note") else ""
        return f"reviewed by {review['by']} on {review['date']}{note}"
    return f"reviewed by: {PENDING}; date: {PENDING} (not reviewed yet)"


def _weaknesses(metrics: dict) -> list[str]:
    """What the held-out rows say against the model (scoring.train.weaknesses), said plainly: the gate's
    decision below is about promotion, not about these."""
    said = metrics.get("weaknesses")
    if said is None:
        return []
    if said == "none found":
        found = [
            "None of the checks (grade calibration, empty grades, ECE, ranking, drivers) found a weakness."
        ]
    else:
        found = [f"- {item}" for item in str(said).split("; ")]
    if metrics.get("grades"):
        found.append(
            f"\nGrades, each tested for underestimated PDs (Jeffreys test at 5%): {metrics['grades']}."
        )
    return ["## What the held-out data say against it", "", *found, ""]


def _gate(gate: dict) -> str:
    lines = [f"Decision: **{gate['decision']}** (gate {'passed' if gate['passed'] else 'not passed'})."]
    if gate.get("champion_version"):
        lines.append(f"Compared with champion version {gate['champion_version']} on the same held-out rows.")
    else:
        lines.append("There was no champion to compare with.")
    lines += [f"- {reason}" for reason in gate.get("reasons", [])]
    new, old = _flat(gate.get("challenger") or {}), _flat(gate.get("champion") or {})
    rows = [[f"`{k}`", _number(v), _number(old[k]) if k in old else ""] for k, v in new.items()]
    return "\n".join(lines) + "\n\n" + _table(["figure", "this version", "champion"], rows)


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
