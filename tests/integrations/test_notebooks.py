"""Every notebook in notebooks/ runs top to bottom in a fresh kernel of this interpreter.

The kernel spec is written to a temporary directory and points at ``sys.executable``, so
the notebooks run against this venv whatever kernels the machine has registered.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SHARED_DATA = REPO.parent / "shared" / "data"  # what the notebooks read, as in conftest
KERNEL = "headroom-test-python3"
TIMEOUT_S = 300


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _kernel_manager(tmp_path: Path) -> KernelManager:
    kernels = tmp_path / "kernels"
    kernelspec.write_kernel_spec(kernels / KERNEL)  # argv: [sys.executable, -m, ipykernel_launcher]
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    assert specs.get_kernel_spec(KERNEL).argv[0] == sys.executable
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def _run(path: Path, tmp_path: Path) -> Any:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        timeout=TIMEOUT_S,
        allow_errors=True,  # errors are asserted below, per cell, with their traceback
        resources={"metadata": {"path": str(path.parent)}},  # cwd = the notebook's folder
    )
    client.execute()
    return nb


def test_there_are_notebooks() -> None:
    assert _notebooks(), f"no notebooks under {NOTEBOOKS}"


def test_committed_notebooks_are_executed() -> None:
    """Notebooks are committed with their outputs (a reader on GitHub sees the tables and the
    plot); ``python scripts/execute_notebooks.py`` refreshes them."""
    for path in _notebooks():
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        counts = [c.execution_count for c in code]
        assert all(counts), f"{path.name}: cells not executed ({counts}); run the script"
        assert counts == sorted(counts), f"{path.name}: cells executed out of order ({counts})"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{path.name}: committed with an error output"
        assert any(c.outputs for c in code), f"{path.name}: committed without outputs"


_executed: dict[Path, Any] = {}


def _executed_notebook(path: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each notebook runs once per session; the tests below read the result."""
    if path not in _executed:
        _executed[path] = _run(path, tmp_path_factory.mktemp(path.stem))
    return _executed[path]


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    nb = _executed_notebook(path, tmp_path_factory)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "not every code cell ran"
    for i, cell in enumerate(code):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, (
            f"{path.name}, code cell {i} raised {errors[0].ename}: {errors[0].evalue}\n"
            + "\n".join(errors[0].traceback)
        )


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_plots(path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    if not SHARED_DATA.exists():
        pytest.skip(f"the plots read {SHARED_DATA}, which is absent")
    nb = _executed_notebook(path, tmp_path_factory)
    plots = [c for c in nb.cells if c.cell_type == "code" and "plot" in c.metadata.get("tags", [])]
    for cell in plots:
        kinds = {k for o in cell.outputs for k in o.get("data", {})}
        assert "image/png" in kinds, f"{path.name}: the plot cell produced no image ({kinds})"
