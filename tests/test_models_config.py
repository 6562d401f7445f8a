"""Where models live: the project home, the tracking URI and the artifact root, read when asked."""

from __future__ import annotations

import os

import mlflow
import pytest

from models import config
from models.config import TrackingSettings


def test_the_default_store_is_a_sqlite_file_in_the_project_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = TrackingSettings.from_env({})
    assert s.home == tmp_path / ".ipcredit" and s.home.is_absolute()
    assert s.tracking_uri == f"sqlite:///{tmp_path / '.ipcredit' / 'mlflow.db'}"
    assert s.registry_uri == s.tracking_uri
    assert s.artifact_root == str(tmp_path / ".ipcredit" / "mlartifacts")


@pytest.mark.parametrize(
    "env, tracking, registry, artifacts",
    [
        ({"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, "http://mlflow:5000", "http://mlflow:5000", None),
        (
            {"MLFLOW_TRACKING_URI": "sqlite:////data/t.db", "MLFLOW_REGISTRY_URI": "sqlite:////data/r.db"},
            "sqlite:////data/t.db",
            "sqlite:////data/r.db",
            "/srv/home/mlartifacts",
        ),
    ],
)
def test_mlflow_environment_variables_are_honoured(env, tracking, registry, artifacts):
    s = TrackingSettings.from_env({"IPCREDIT_HOME": "/srv/home", **env})
    assert (s.tracking_uri, s.registry_uri, s.artifact_root) == (tracking, registry, artifacts)


def test_configure_points_mlflow_at_the_home_and_leaves_the_environment_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    settings = config.configure()
    assert (
        mlflow.get_tracking_uri() == settings.tracking_uri == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    )
    assert mlflow.get_registry_uri() == settings.tracking_uri
    assert (tmp_path / "home").is_dir()
    assert "MLFLOW_TRACKING_URI" not in os.environ  # a later IPCREDIT_HOME is not shadowed by it
    monkeypatch.setenv("IPCREDIT_HOME", str(tmp_path / "other"))
    assert config.configure().tracking_uri == f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
