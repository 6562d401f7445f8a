"""Test session setup."""

import os

# LightGBM's OpenMP threads spin while waiting by default; on a 2-core machine shared with other work
# that slows every small fit many times over. Set before lightgbm is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402 (after the thread setting above)

from lending.testing import BACKENDS, clear, scratch_database  # noqa: E402


@pytest.fixture(scope="module", params=BACKENDS)
def migrated(request, tmp_path_factory):
    """A records database at the migrations' head, one per test module and backend (SQLite, PostgreSQL)."""
    with scratch_database(request.param, tmp_path_factory.mktemp(request.param)) as database:
        yield database


@pytest.fixture
def db(migrated):
    """The module's records database, emptied for each test."""
    clear(migrated)
    return migrated
