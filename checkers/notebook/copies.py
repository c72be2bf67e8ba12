"""The learner's own copies of the notebooks, so that updating the course never touches their work.

The course's notebooks (`notebooks/`, tracked by git) are the edition; a learner works in copies
in `my-notebooks/` (ignored by git), where their projects and progress live too (`work/`), so
`git pull` never meets a change of theirs. `sync()` brings the copies up to date:

- a notebook the learner has no copy of (a new chapter) is copied;
- a copy the learner never changed is replaced by the course's new version;
- a copy the learner changed stays exactly as it is, and the new version is written beside it,
  as `NN-topic (new version).ipynb`, for the learner to compare and move their work over.

What was copied is remembered in `my-notebooks/.copies.json` (a digest of each file), so a copy
the learner changed is never mistaken for an old one. When that record is missing or damaged,
every copy that differs from the course's counts as changed: nothing is overwritten.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from ..paths import MINE, NOTEBOOKS, ROOT, WORK

RECORD = ".copies.json"
NEW_VERSION = "{stem} (new version).ipynb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record(mine: Path) -> tuple[dict, str | None]:
    """What was copied, and a notice when the record could not be read."""
    path = mine / RECORD
    if not path.exists():
        return {}, None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(record, dict) and all(isinstance(v, dict) for v in record.values()):
            return record, None
    except (OSError, ValueError):
        pass
    return {}, f"{MINE}/{RECORD} could not be read: every copy that differs from the course's counts as yours"


def _save(mine: Path, record: dict) -> None:
    (mine / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def sync(course: Path, mine: Path) -> list[str]:
    """Bring the copies in `mine` up to date with the notebooks in `course`; say what changed."""
    mine.mkdir(parents=True, exist_ok=True)
    record, notice = _record(mine)
    said = [notice] if notice else []
    for source in sorted(course.glob("*.ipynb")):
        name, copy = source.name, mine / source.name
        edition, seen = _digest(source), record.get(source.name, {})
        adopted = "copy" in seen and seen["copy"] is None  # see adopt(): theirs, whatever it holds
        if not copy.exists():
            shutil.copyfile(source, copy)
            record[name] = {"course": edition, "copy": edition}
            said.append(f"new: {MINE}/{name}")
        elif seen.get("course") == edition:
            continue  # the course has not changed it since it was copied
        elif not adopted and _digest(copy) == edition:  # the same file, however it came to be there
            record[name] = {"course": edition, "copy": edition}
        elif not adopted and seen.get("copy") == _digest(copy):  # untouched since copied: nothing of theirs
            shutil.copyfile(source, copy)
            record[name] = {"course": edition, "copy": edition}
            said.append(f"updated: {MINE}/{name}")
        else:
            beside = mine / NEW_VERSION.format(stem=source.stem)
            shutil.copyfile(source, beside)
            record[name] = {**seen, "course": edition}
            said.append(f"changed in the course: {MINE}/{name} is yours and is kept as it is; the new version "
                        f"is {MINE}/{beside.name}, to compare and copy your work over")
    _save(mine, record)
    return said


def adopt(course: Path, mine: Path) -> list[str]:
    """Move work done in the course's own folder (before copies existed) into `mine`, as the learner's.

    Every notebook is copied as it is and counts as the learner's (an update writes the new
    version beside it); the projects and progress in `course/work/` move along.
    """
    if mine.exists() or not (course / WORK).is_dir():
        return []
    mine.mkdir(parents=True)
    for source in sorted(course.glob("*.ipynb")):
        shutil.copyfile(source, mine / source.name)
    shutil.move(course / WORK, mine / WORK)
    _save(mine, {p.name: {"course": _digest(p), "copy": None} for p in sorted(course.glob("*.ipynb"))})
    return [f"your notebooks, projects and progress were moved from {NOTEBOOKS}/ to {MINE}/, where updates never "
            f"touch them; `git checkout {NOTEBOOKS}/` gives the course's own folder back to git"]


def main(root: Path = ROOT) -> None:
    course, mine = root / NOTEBOOKS, root / MINE
    for line in adopt(course, mine) + sync(course, mine):
        print(f"[course] {line}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
