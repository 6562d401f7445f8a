"""Every notebook under notebooks/ runs from top to bottom without a cell error, in a kernel of this very
interpreter (the project's venv), and is stored without outputs.

The kernel: a kernelspec for `sys.executable` is installed into a temporary folder put first on JUPYTER_PATH,
so the notebooks run with this venv's packages whatever kernelspecs the machine or the user has (a `python3`
spec in ~/.local/share/jupyter may point at another Python). Warnings inside the kernel are the notebook's
output, not this test's; the notebooks set up their own temporary model store (IPCREDIT_HOME) and the tracking
URIs are removed from the kernel's environment, so nothing here touches a real store.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extras")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
KERNEL_NAME = "ipcredit-test-venv"
CELL_TIMEOUT = 600  # seconds per cell; the retraining walkthrough takes about a minute in all


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_notebook_is_valid_and_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    run = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not run, f"{path.name}: cells {run} hold outputs; clear them before saving"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """The name of a kernelspec that starts this interpreter, found through JUPYTER_PATH."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    prefix = tmp_path_factory.mktemp("jupyter")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        install(kernel_name=KERNEL_NAME, display_name="ipcredit tests", prefix=str(prefix))
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "IPCREDIT_HOME"):
            mp.delenv(key, raising=False)  # the kernel inherits this environment
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        assert spec.argv[0] == sys.executable, spec.argv
        yield KERNEL_NAME


@pytest.mark.heavy
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_notebook_runs_without_errors(path, kernel, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        allow_errors=False,  # the first cell error raises CellExecutionError with its traceback
        resources={"metadata": {"path": str(tmp_path)}},  # working directory: nothing lands in the project
    )
    client.execute()
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
