"""Execute every notebook in notebooks/ in place, so they are committed with their outputs.

    .venv/bin/python scripts/execute_notebooks.py

Runs each notebook top to bottom in a fresh kernel of this interpreter (a kernel spec
written to a temporary directory), with the notebook's folder as the working directory,
and stops on the first error. The test suite re-runs them (tests/integrations/test_notebooks.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat
from ipykernel import kernelspec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "headroom-python3"


def execute(path: Path, kernels: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    client = nbclient.NotebookClient(
        nb,
        km=KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs),
        timeout=600,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"executed {path.relative_to(NOTEBOOKS.parent)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kernels = Path(tmp) / "kernels"
        kernelspec.write_kernel_spec(kernels / KERNEL)
        for path in sorted(NOTEBOOKS.glob("*.ipynb")):
            execute(path, kernels)
    sys.exit(0)


if __name__ == "__main__":
    main()
