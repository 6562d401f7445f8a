"""Which code and environment made a model or a decision: the git commit, the SHA-256 of the project's Python
files, the package versions. Kept with every registered version (models.lifecycle) and with every record the
service stores (api.serving)."""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from models import pyfunc

log = logging.getLogger(__name__)

ENVIRONMENT_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "pyarrow",
    "joblib",
    "mlflow",
    "shap",
)


def environment() -> dict[str, Any]:
    packages = {}
    for package in ENVIRONMENT_PACKAGES:
        try:
            packages[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            packages[package] = "not installed"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": packages,
        "pip_requirements": pyfunc.pip_requirements(),
    }


def code_version() -> dict[str, Any]:
    """The git commit of the project (and whether tracked files have uncommitted changes; "unknown" without
    git), and the SHA-256 of the Python files logged with the model: the code's identity even when it is
    not committed."""
    try:
        version = metadata.version("ipcredit")
    except metadata.PackageNotFoundError:
        version = "not installed"
    digest = hashlib.sha256()
    for package in pyfunc.CODE_PACKAGES:
        for file in sorted((pyfunc.PROJECT_ROOT / package).rglob("*.py")):
            digest.update(
                file.relative_to(pyfunc.PROJECT_ROOT).as_posix().encode() + b"\0" + file.read_bytes()
            )
    out: dict[str, Any] = {
        "commit": "unknown",
        "dirty": False,
        "package_version": version,
        "code_sha256": digest.hexdigest(),
    }
    root = str(pyfunc.PROJECT_ROOT)
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as e:
        log.info("no git commit recorded: %s", e)
        return out
    if commit.returncode == 0:
        out["commit"] = commit.stdout.strip()
        out["dirty"] = bool(status.stdout.strip())
    return out
