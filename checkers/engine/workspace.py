"""Chapter checkpoints and the learner's project folder for each chapter."""
from __future__ import annotations

import ast
import datetime
import functools
import hashlib
import importlib
import json
import os
import shutil
import stat
import sys
from pathlib import Path

from ..paths import BACKUPS, CHECKPOINTS, WORK, module_name  # noqa: F401  (module_name: for callers)

IGNORED = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")


@functools.cache
def checkpoint(chapter: str) -> dict:
    """Load the build's record of a chapter: its start state and the files its cells write."""
    path = CHECKPOINTS / f"{chapter}.json"
    if not path.exists():
        raise LookupError(f"no checkpoint for chapter {chapter!r}: run `python -m checkers build`")
    return json.loads(path.read_text(encoding="utf-8"))


def chapters() -> list[str]:
    return sorted(p.stem for p in CHECKPOINTS.glob("[0-9][0-9]-*.json"))


def withheld(chapter: str) -> bool:
    """Is this chapter's reference solution left out of this edition of the course (`checkers release`)?"""
    return bool(checkpoint(chapter).get("withheld"))


def files(chapter: str, version: str) -> dict[str, str]:
    """Return the project's files after the chapter's cells: `start`, `starter` or `solution`."""
    data = checkpoint(chapter)
    if version == "solution" and withheld(chapter):
        raise LookupError(f"the solutions of chapter {chapter} are not in this edition of the course")
    result = dict(data["start"])
    if version != "start":
        for cell in data["cells"]:
            result[cell["path"]] = cell[version]
    return result


@functools.cache
def libraries(chapter: str) -> tuple[str, ...]:
    """The modules that the chapter's project imports from outside itself (`flask`, `sqlalchemy.orm`, ...).

    Read from the starter files' source, never by importing the project: the course's own record of them.
    """
    sources = {path: text for path, text in files(chapter, "starter").items() if path.endswith(".py")}
    own = {path.split("/")[0].removesuffix(".py") for path in sources}
    names = set()
    for text in sources.values():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return tuple(sorted(name for name in names if name.split(".")[0] not in own | {"__future__"}))


def preload(chapter: str) -> None:
    """Import the libraries the chapter's project uses, so that each process forked from this one has them:
    a check then spends its time on the learner's code, not on importing Alembic once more."""
    for name in libraries(chapter):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 — not installed or broken: the learner's import will say so in the check
            continue


def _order(key: str) -> int:
    return int(key.removeprefix("ex"))


def solved_before(chapter: str, exercise: str) -> dict[str, str]:
    """The project as a learner has it on reaching `exercise`: the earlier ones solved, it and the later ones not yet.

    What an exercise whose answer is a test runs that test on (a graded edition keeps the
    solutions it needs, and only those).
    """
    result = dict(checkpoint(chapter)["start"])
    for cell in checkpoint(chapter)["cells"]:
        solved = cell["exercise"] is None or _order(cell["exercise"]) < _order(exercise)
        result[cell["path"]] = cell["solution" if solved else "starter"]
        if result[cell["path"]] is None:
            raise LookupError(f"the solution of {chapter}'s {cell['exercise']} is not in this edition of the course")
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


def digest(root: Path) -> str | None:
    """A digest of what a check copies of a project (file names and contents), or None if it cannot tell.

    Two equal digests mean a check sees the same project; a link or a special file (whose
    target could change unseen) makes it None.
    """
    total = hashlib.sha256()
    for folder, dirs, names in os.walk(root):
        ignored = IGNORED(folder, dirs + names)
        dirs[:] = sorted(d for d in dirs if d not in ignored)
        for name in sorted(n for n in dirs + names if n not in ignored):
            path = Path(folder, name)
            try:
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    return None
                total.update(path.relative_to(root).as_posix().encode() + (b"/\0" if stat.S_ISDIR(mode) else b"\0"))
                if stat.S_ISREG(mode):
                    total.update(f"{path.stat().st_size}:".encode())
                    with path.open("rb") as f:
                        while chunk := f.read(1 << 20):
                            total.update(chunk)
            except OSError:
                return None
    return total.hexdigest()


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


def not_attempted(chapter: str, key: str, project: Path) -> str | None:
    """Say why an exercise counts as not attempted, or return None if it was attempted."""
    cells = exercise_files(chapter, key)
    start = checkpoint(chapter)["start"]
    for cell in cells:
        target = project / cell["path"]
        if not target.is_file():
            continue
        text = _normal(target.read_text(encoding="utf-8", errors="replace"))
        if text not in (_normal(cell["starter"]), _normal(start.get(cell["path"], ""))):
            return None
    paths = ", ".join(f"`{c['path']}`" for c in cells)
    return (f"{paths} still holds the starter code. Write your solution in the exercise's "
            "`%%writefile` cell, run that cell, then run this check again.")


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())
