"""The learner's progress: each exercise's latest outcome, in a small file beside the notebooks.

`work/.progress.json` survives kernel restarts and is shared by every notebook in the folder.
It is replaced atomically (never half-written), and a file that cannot be read is moved
aside with a message, never crashed on and never silently thrown away.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path

from ..engine import workspace
from ..paths import GRADER, GRADING, MINE, NOTEBOOKS

FILE = ".progress.json"
LOCK = ".progress.lock"

listeners: list = []  # called with the new progress (latest, ever passed) after every record in this process
notices: list[str] = []  # what went wrong with the file in this process, for dashboards


def grading() -> bool:
    """Is this kernel being graded (by the grade command or by nbval in grading mode)?"""
    return bool(os.environ.get(GRADING) or os.environ.get(GRADER))


_notebook_dir: Path | None = None


def notebook_dir() -> Path:
    """The notebooks' folder: as a chapter's setup recorded it, else found from the current folder.

    Found means: the current folder, or its `my-notebooks/` or `notebooks/` (the repository's
    root), or the nearest folder above that has progress (a chapter's project folder), in that order.
    """
    if _notebook_dir is not None:
        return _notebook_dir
    here = Path.cwd()
    for folder in (here, here / MINE, here / NOTEBOOKS, *here.parents):
        if (folder / workspace.WORK / FILE).is_file():
            return folder
    return here


def record_notebook_dir(folder: Path) -> None:
    """Remember where the notebooks are, before setup moves into a chapter's project."""
    global _notebook_dir
    if _notebook_dir is None:
        _notebook_dir = Path(folder).resolve()


def path(base: Path | None = None) -> Path:
    """Return the progress file for the notebooks in `base` (default: the running notebook's)."""
    if base is None:
        base = notebook_dir()
    return Path(base) / workspace.WORK / FILE


def load(base: Path | None = None) -> dict[str, dict[str, str]]:
    """Return {chapter: {exercise: latest outcome}}, empty when nothing has been checked yet."""
    return _load(base)[0]


def ever_passed(base: Path | None = None) -> dict[str, set[str]]:
    """Return {chapter: the exercises that have passed at least once}: a later experiment keeps them."""
    return _load(base)[1]


def _load(base: Path | None) -> tuple[dict, dict]:
    target = path(base)
    if not target.exists():
        return {}, {}
    with _locked(target):
        return _read(target)


def record(chapter: str, exercise: str, outcome) -> None:
    """Remember an exercise's latest outcome; never while grading, and never raising."""
    if grading():
        return
    try:
        target = path()
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target):
            chapters, passed = _read(target)
            value = getattr(outcome, "value", str(outcome))
            chapters.setdefault(chapter, {})[exercise] = value
            if value == "PASS":
                passed.setdefault(chapter, set()).add(exercise)
            _write(target, chapters, passed)
    except Exception as error:  # noqa: BLE001 — progress is a convenience; the check matters
        print(f"(Your progress could not be saved: {type(error).__name__}: {error})", file=sys.stderr)
        return
    for listener in list(listeners):
        try:
            listener(chapters, passed)
        except Exception:  # noqa: BLE001 — a broken view must not break a check
            pass


def _read(target: Path) -> tuple[dict[str, dict[str, str]], dict[str, set[str]]]:
    """The latest outcomes and the exercises ever passed (a version 1 file knows only the latest)."""
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return {}, {}
    try:
        content = json.loads(data.decode("utf-8"))
        chapters = content["chapters"]
        if not all(
            isinstance(exercises, dict) and all(isinstance(v, str) for v in exercises.values())
            for exercises in chapters.values()
        ):
            raise ValueError("unexpected content")
        listed = content.get("passed", {})
        if not isinstance(listed, dict) or not all(
            isinstance(v, list) and all(isinstance(e, str) for e in v) for v in listed.values()
        ):
            raise ValueError("unexpected content")
        passed = {chapter: set(exercises) for chapter, exercises in listed.items()}
        for chapter, exercises in chapters.items():
            passed.setdefault(chapter, set()).update(e for e, outcome in exercises.items() if outcome == "PASS")
        return chapters, {chapter: found for chapter, found in passed.items() if found}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        _set_aside(target, error)
        return {}, {}


def _set_aside(target: Path, error: Exception) -> None:
    """Keep an unreadable progress file under a new name, and say so."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    aside = target.with_name(f".progress-unreadable-{stamp}.json")
    os.replace(target, aside)
    where = f"{workspace.WORK}/"
    message = (
        f"TicketHub could not read your progress file {where}{target.name} "
        f"({type(error).__name__}), so it was kept as {where}{aside.name} and your progress "
        "starts afresh. Your code is not affected; run a chapter's checks to fill it in again."
    )
    notices.append(message)
    print(message, file=sys.stderr)


def _write(target: Path, chapters: dict, passed: dict) -> None:
    """Replace the file in one step, so a reader never sees half of it."""
    fd, temporary = tempfile.mkstemp(prefix=".progress-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            listed = {chapter: sorted(found) for chapter, found in passed.items()}
            json.dump({"version": 2, "chapters": chapters, "passed": listed}, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _locked(target: Path):
    """Hold a lock beside the file, so two notebooks recording at once lose nothing."""
    try:
        import fcntl
    except ImportError:  # Windows: atomic replacement alone
        yield
        return
    with open(target.with_name(LOCK), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
