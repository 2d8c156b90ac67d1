"""Clear the outputs and execution counts of notebooks in place, so they diff cleanly:
``.venv/bin/python examples/strip_outputs.py examples/*.ipynb``."""

from __future__ import annotations

import sys

import nbformat


def strip(path: str) -> bool:
    """Clear one notebook; returns whether anything changed."""
    notebook = nbformat.read(path, as_version=4)
    changed = False
    for cell in notebook.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count, changed = [], None, True
    if changed:
        nbformat.write(notebook, path)
    return changed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {'stripped' if strip(name) else 'clean'}")
