"""The pytest plugin behind `python -m checkers grade`, on top of nbval.

nbval executes each submitted notebook cell by cell. For the course's check cells this
plugin does not trust what happened in the kernel (a learner can patch anything there):
it runs the exercise's check itself, through its own check server, on the files the
notebook has written so far, and that result decides the cell. After the notebook's last
cell, every exercise that did not pass at its check cell is checked once more, on the
notebook's final state (a fix written below the check, a check cell moved above its code),
unless its project is still as it was there:
the better verdict counts (see `grade._collect`). Each check's seed comes from the notebook
and the exercise, so the same notebook always gets the same marks. It also
restarts a kernel that died (and re-runs the setup cell) so one crash costs only the
exercise it happened in, and it checks after each notebook that the course's own code
was not modified.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from ..engine import server

from ..engine import workspace
from ..paths import PACKAGE
from ..engine.outcomes import Outcome

RESULTS = "TICKETHUB_GRADE_RESULTS"


class CheckNotPassed(AssertionError):
    """The externally run check did not pass."""


class Grader:
    def __init__(self, results: Path):
        self.client = server.Client()
        self.client.start()
        self.package = package_files()
        self.out = (results / f"worker-{os.getpid()}.jsonl").open("a", encoding="utf-8")
        # by notebook: each exercise checked at its check cell, whether it passed, and the project's digest then
        self.checked: dict[str, dict[str, tuple[bool, str | None]]] = {}
        self.digests: dict[str, bytes] = {}  # by notebook: its bytes' digest before its first cell ran

    def record(self, **row) -> None:
        self.out.write(json.dumps(row) + "\n")
        self.out.flush()

    def close(self) -> None:
        self.client.stop()
        self.out.close()


_grader: Grader | None = None


def package_files() -> dict[Path, bytes]:
    """Snapshot the course's code, to notice (and undo) a submission that writes into it."""
    root = PACKAGE
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def pytest_configure(config):
    global _grader
    if os.environ.get(RESULTS):
        _grader = Grader(Path(os.environ[RESULTS]))


def pytest_unconfigure(config):
    if _grader:
        _grader.close()


def where(item) -> tuple[str, str, dict] | None:
    """Return (learner, chapter, protected cell) for a graded notebook cell, else None."""
    cell = getattr(item, "cell", None)
    if cell is None:
        return None
    path = Path(item.parent.path)
    chapter = path.stem
    protected = {p["id"]: p for p in workspace.checkpoint(chapter)["protected"]}
    return path.parent.name, chapter, protected.get(cell.get("id"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Bring back a kernel that died in an earlier cell, set up as the chapter's first cell does."""
    if _grader is None or getattr(item, "cell", None) is None:
        return
    notebook = item.parent
    _digest(Path(notebook.path))
    kernel = getattr(notebook, "kernel", None)
    if kernel is None or kernel.is_alive():
        return
    from nbval.kernel import RunningKernel

    try:
        kernel.stop()
    except Exception:  # noqa: BLE001 — it is dead already; we only tidy up
        pass
    notebook.kernel = RunningKernel(
        item.config.option.nbval_kernel_name,
        cwd=str(Path(notebook.path).parent),
        startup_timeout=item.config.option.nbval_kernel_startup_timeout,
    )
    chapter = Path(notebook.path).stem
    setup = next(p for p in workspace.checkpoint(chapter)["protected"] if p["exercise"] is None)
    msg_id = notebook.kernel.execute_cell_input(setup["source"], allow_stdin=False)
    notebook.kernel.await_reply(msg_id, timeout=60)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    located = where(item) if _grader else None
    if not located or not located[2] or not located[2]["exercise"]:
        try:
            return (yield)
        except BaseException as error:
            if located:
                learner, chapter, _ = located
                _grader.record(kind="cell", learner=learner, notebook=chapter,
                               cell=f"code cell {item.cell_num + 1} (id {item.cell.get('id')})",
                               message=_first_line(error))
            raise
    learner, chapter, cell = located
    try:
        yield
    except BaseException:  # noqa: BLE001 — what the kernel says about a check is not trusted
        pass
    exercise = cell["exercise"]
    seen = workspace.digest(_project(item, chapter))  # before the check: it is what the check sees
    result = _check(item, chapter, exercise)
    _grader.record(kind="check", learner=learner, notebook=chapter, exercise=exercise,
                   outcome=result.outcome.value, message=result.text(), seed=result.seed)
    _grader.checked.setdefault(str(item.parent.path), {})[exercise] = (result.outcome is Outcome.PASS, seen)
    if result.outcome is not Outcome.PASS:
        raise CheckNotPassed(result.text())


def _project(item, chapter: str) -> Path:
    return Path(item.parent.path).parent / workspace.WORK / chapter


def _check(item, chapter: str, exercise: str):
    """Run an exercise's check on the notebook's project as it is now, with the notebook's seed for it."""
    return _grader.client.run(workspace.module_name(chapter), exercise, _project(item, chapter),
                              seed=seed(Path(item.parent.path), exercise))


def seed(notebook: Path, exercise: str) -> int:
    """The seed of an exercise's checks, drawn from the notebook as graded (its cells' code, ids and tags,
    after `grade.sanitize`): the same work always gets the same checks, and so the same marks."""
    return int.from_bytes(hashlib.sha256(_digest(notebook) + exercise.encode()).digest()[:4], "big")


def _digest(notebook: Path) -> bytes:
    # read once, before any of its cells runs: a cell that rewrites its own notebook changes nothing
    if str(notebook) not in _grader.digests:
        _grader.digests[str(notebook)] = hashlib.sha256(notebook.read_bytes()).digest()
    return _grader.digests[str(notebook)]


def final_state(item) -> None:
    """Check, on the notebook's final state, each exercise that did not pass at its check cell.

    Where the project is as it was at that check cell, the check would see the same files with
    the same seed: its verdict there stands, and the check is not run again.
    """
    located = where(item)
    if not located:
        return
    learner, chapter, _ = located
    checked = _grader.checked.pop(str(item.parent.path), {})
    now = workspace.digest(_project(item, chapter))
    for exercise in (record["exercise"] for record in workspace.checkpoint(chapter)["protected"]):
        passed, then = checked.get(exercise, (False, None))
        if exercise and not passed and (then is None or then != now):
            result = _check(item, chapter, exercise)
            _grader.record(kind="final", learner=learner, notebook=chapter, exercise=exercise,
                           outcome=result.outcome.value, message=result.text(), seed=result.seed)


def pytest_runtest_teardown(item, nextitem):
    """After a notebook's last cell, make sure the course's code is as it was, then grade its final state."""
    if _grader is None or getattr(item, "cell", None) is None:
        return
    if nextitem is not None and getattr(nextitem, "parent", None) is item.parent:
        return
    restored(item)  # first: the final state is checked with the course's own code
    final_state(item)


def restored(item) -> None:
    """Undo any change to the course's code, and mark the notebook that made it TAMPERED."""
    now = package_files()
    if now == _grader.package:
        return
    for path in set(now) - set(_grader.package):
        path.unlink(missing_ok=True)
    for path, data in _grader.package.items():
        if now.get(path) != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    located = where(item)
    if located:
        _grader.record(kind="tampered", learner=located[0], notebook=located[1],
                       message="The notebook changed the course's own code (the `checkers` package).")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(error: BaseException) -> str:
    """The line that says what went wrong: the exception at the end of the cell's traceback."""
    inner = getattr(error, "inner_traceback", None)  # nbval keeps the kernel's traceback here
    text = ANSI.sub("", inner if isinstance(inner, str) else "\n".join(inner or [])) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__
