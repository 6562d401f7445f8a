"""The interim local model store (until the MLflow lifecycle of issue 5 replaces it).

A model named NAME lives in `$IPCREDIT_HOME/models/NAME/` (default `.ipcredit/models/NAME/` under
the working directory): `model.joblib` (the fitted object), `spec.yaml` (its feature spec) and
`metrics.json` (the held-out figures it was trained with).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import joblib


def home() -> Path:
    return Path(os.environ.get("IPCREDIT_HOME", ".ipcredit"))


def model_dir(name: str) -> Path:
    return home() / "models" / name


def save(name: str, model, spec, metrics: dict) -> Path:
    folder = model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    spec.to_yaml(folder / "spec.yaml")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n", encoding="utf-8")
    return folder


def load(name: str):
    path = model_dir(name) / "model.joblib"
    if not path.exists():
        raise FileNotFoundError(f"no model named {name!r}: expected {path} (train one with `ipcredit train`)")
    return joblib.load(path)
