"""Chapter checkpoints and the learner's project folder for each chapter."""
from __future__ import annotations

import datetime
import functools
import importlib
import json
import shutil
import sys
from pathlib import Path

CHECKPOINTS = Path(__file__).parent / "checkpoints"
WORK = "work"  # each chapter's project lives in work/NN-topic/ beside the notebook
BACKUPS = ".backups"
IGNORED = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")


@functools.cache
def checkpoint(chapter: str) -> dict:
    """Load the build's record of a chapter: its start state and the files its cells write."""
    path = CHECKPOINTS / f"{chapter}.json"
    if not path.exists():
        raise LookupError(f"no checkpoint for chapter {chapter!r}: run `python -m checkers build`")
    return json.loads(path.read_text(encoding="utf-8"))


def chapters() -> list[str]:
    return sorted(p.stem for p in CHECKPOINTS.glob("*.json"))


def module_name(chapter: str) -> str:
    """checkers.ch01_project_structure for 01-project-structure."""
    return "checkers.ch" + chapter.replace("-", "_")


def files(chapter: str, version: str) -> dict[str, str]:
    """Return the project's files after the chapter's cells: `start`, `starter` or `solution`."""
    data = checkpoint(chapter)
    result = dict(data["start"])
    if version != "start":
        for cell in data["cells"]:
            result[cell["path"]] = cell[version]
    return result


def exercise_files(chapter: str, exercise: str) -> list[dict]:
    """Return the cells (path, starter, solution) that an exercise asks the learner to write."""
    return [c for c in checkpoint(chapter)["cells"] if c["exercise"] == exercise]


def write_files(root: Path, contents: dict[str, str], overwrite: bool = True) -> None:
    for rel, text in contents.items():
        target = root / rel
        if overwrite or not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def materialise(chapter: str, root: Path) -> list[str]:
    """Create the chapter's project in `root`, keeping every file that is already there.

    The start state comes from the checkpoint; so do the files of the chapter's given cells
    and the starters of its exercises, so a skipped cell cannot break a check or an import.
    Returns the files written.
    """
    data = checkpoint(chapter)
    wanted = dict(data["start"])
    for cell in data["cells"]:
        if cell["exercise"]:
            wanted.setdefault(cell["path"], cell["starter"])  # the last chapter's working file wins
        else:
            wanted[cell["path"]] = cell["solution"]
    missing = {rel: text for rel, text in wanted.items() if not (root / rel).exists()}
    write_files(root, missing)
    return sorted(missing)


def backup(root: Path) -> Path | None:
    """Move a chapter's project into work/.backups/ and return where it went."""
    if not root.exists() or not any(root.iterdir()):
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = root.parent / BACKUPS / f"{root.name}-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(root), str(target))
    return target


def fresh_import(name: str = "tickethub"):
    """Import the learner's package anew, so edits written by `%%writefile` are picked up."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
    importlib.invalidate_caches()
    return importlib.import_module(name)
