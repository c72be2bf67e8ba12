"""Authoring helpers: run solution notebooks from a clean project and store their outputs."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from .build import CHAPTER, ROOT
from ..engine.workspace import WORK

CELL_TIMEOUT = 120


def execute_notebook(path: Path, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Execute a notebook in its own folder, after removing that chapter's old project."""
    from nbclient import NotebookClient

    shutil.rmtree(path.parent / WORK / path.stem, ignore_errors=True)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def execute_solutions(names: list[str]) -> int:
    paths = [Path(n) for n in names] or sorted(
        p for p in (ROOT / "solutions").glob("*.ipynb") if CHAPTER.match(p.name)
    )
    for path in paths:
        print(f"executing {path} …", flush=True)
        nbformat.write(execute_notebook(path.resolve()), path)
    return 0
