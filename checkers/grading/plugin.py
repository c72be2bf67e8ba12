"""The pytest plugin behind `python -m checkers grade`, on top of nbval.

nbval executes each submitted notebook cell by cell. For the course's check cells this
plugin does not trust what happened in the kernel (a learner can patch anything there):
it runs the exercise's check itself, through its own check server, on the files the
notebook has written so far, and that result decides the cell. After the notebook's last
cell, every exercise that did not pass at its check cell is checked once more, on the
notebook's final state (a fix written below the check, a check cell moved above its code),
unless its project is still as it was there: the better verdict counts (see
`grade._collect`). Each check's seed comes from the notebook and the exercise, so the same
notebook always gets the same marks. With the sandbox on, each notebook's kernel runs in a sandbox of its own (`isolation.py`), and so do
the learner's processes of its checks; the judges stay here, outside.

Each notebook has a time budget: when it is used up the notebook is stopped, and the
checks it did not reach are reported as such. The plugin also restarts a kernel that died
(and re-runs the setup cell) so one crash costs only the exercise it happened in, and it
checks after each notebook that the course's own code was not modified.

Results travel only in pytest's own reports (each test's `user_properties`), which pytest-xdist
brings from the workers to the controller; there, and only there, they are written to the
descriptor `checkers grade` handed to that one process. No kernel can see either.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from . import isolation

from ..engine import server

from ..engine import workspace
from ..paths import PACKAGE
from ..engine.outcomes import Outcome

PROPERTY = "tickethub-grade"  # the name of the plugin's rows in a report's user_properties


class CheckNotPassed(AssertionError):
    """The externally run check did not pass."""


def pytest_addoption(parser):
    group = parser.getgroup("tickethub-grade", "set by `python -m checkers grade`")
    group.addoption("--tickethub-run", help="the run's private folder (turns grading on)")
    group.addoption("--tickethub-sandbox", action="store_true", help="one bubblewrap sandbox per notebook")
    group.addoption("--tickethub-budget", type=float, default=120.0, help="seconds per notebook")
    group.addoption("--tickethub-cell-timeout", type=float, default=60.0, help="seconds per cell")
    group.addoption("--tickethub-results-fd", type=int, help="where the controller writes the rows")


class Notebook:
    """A notebook's time budget, counted from its first cell (its kernel's start included)."""

    def __init__(self, budget: float):
        self.budget, self.started, self.over = budget, time.monotonic(), False

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)


class Grader:
    def __init__(self, config):
        self.budget = config.option.tickethub_budget
        self.cell_timeout = config.option.tickethub_cell_timeout
        self.notebooks: dict[Path, Notebook] = {}
        self.client = server.Client()
        self.client.start()
        self.package = package_files()
        # by notebook: each exercise checked at its check cell, whether it passed, and the project's digest then
        self.checked: dict[str, dict[str, tuple[bool, str | None]]] = {}
        self.digests: dict[str, bytes] = {}  # by notebook: its bytes' digest before its first cell ran

    def close(self) -> None:
        self.client.stop()


class Collector:
    """The controller's side: every row of every report, one JSON line each, to one descriptor."""

    def __init__(self, fd: int):
        self.out = os.fdopen(fd, "w", encoding="utf-8")

    def pytest_runtest_logreport(self, report):
        for name, row in getattr(report, "user_properties", ()):
            if name == PROPERTY:
                self.out.write(json.dumps(row) + "\n")
        self.out.flush()

    def pytest_unconfigure(self, config):
        self.out.close()


_grader: Grader | None = None


def package_files() -> dict[Path, bytes]:
    """Snapshot the course's code, to notice (and undo) a submission that writes into it."""
    root = PACKAGE
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def pytest_configure(config):
    global _grader
    if not config.getoption("tickethub_run", None):
        return
    worker = hasattr(config, "workerinput")
    if not worker and config.option.tickethub_results_fd is not None:
        config.pluginmanager.register(Collector(config.option.tickethub_results_fd), "tickethub-collector")
    if worker or not getattr(config.option, "numprocesses", None):  # this process runs notebooks
        if config.option.tickethub_sandbox:
            isolation.configure(sandbox_settings(Path(config.option.tickethub_run), config.option.tickethub_budget))
        _grader = Grader(config)


def sandbox_settings(run: Path, budget: float) -> isolation.Settings:
    """What every sandbox of this run sees: the Python environment, the course's code (the run's
    frozen copy, which this process imports too), an environment of its own, and its CPU time."""
    lib = str(PACKAGE.parent)
    env = {
        "PATH": os.pathsep.join([os.path.join(sys.prefix, "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONPATH": lib, "PYTHONDONTWRITEBYTECODE": "1",
        "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
    }  # and no TICKETHUB_* setting: what the learner's code can read of its environment is a learner's
    return isolation.Settings(run=run, readonly=[Path(lib), *isolation.python_paths()], env=env,
                              cpu_seconds=int(budget) + 10)


def pytest_unconfigure(config):
    if _grader:
        _grader.close()


def where(item) -> tuple[str, str, dict] | None:
    """Return (learner, chapter, protected cell) for a graded notebook cell, else None.

    Each notebook is graded in a folder of its own: `<learner>/<chapter>/<chapter>.ipynb`.
    """
    cell = getattr(item, "cell", None)
    if cell is None:
        return None
    path = Path(item.parent.path)
    chapter = path.stem
    protected = {p["id"]: p for p in workspace.checkpoint(chapter)["protected"]}
    return path.parent.parent.name, chapter, protected.get(cell.get("id"))


def record(item, **row) -> None:
    """Add a row to this test's report: the only way results leave this process."""
    item.user_properties.append((PROPERTY, row))


def _notebook(item) -> Notebook:
    path = Path(item.parent.path)
    if path not in _grader.notebooks:
        _grader.notebooks[path] = Notebook(_grader.budget)
    return _grader.notebooks[path]


def _stop(notebook) -> None:
    kernel = getattr(notebook, "kernel", None)
    if kernel is not None and hasattr(kernel, "km"):
        try:
            kernel.stop()
        except Exception:  # noqa: BLE001 — stopping is all we want; a dead kernel is stopped already
            pass


def _over_budget(item, state: Notebook) -> None:
    if state.over:
        return
    state.over = True
    learner, chapter, _ = where(item)
    record(item, kind="budget", learner=learner, notebook=chapter, message=(
        f"The notebook did not finish within its time budget of {state.budget:g} seconds, so it was stopped "
        f"at code cell {item.cell_num + 1}; the checks after that point did not run. Is there a cell that "
        "waits or loops for a long time?"))
    _stop(item.parent)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Keep to the notebook's budget; bring back a kernel that died in an earlier cell."""
    if _grader is None or getattr(item, "cell", None) is None:
        return
    _digest(Path(item.parent.path))
    state = _notebook(item)
    if state.over or state.left() <= 0:
        _over_budget(item, state)
        pytest.skip("the notebook's time budget is used up")
    # nbval reads the cell timeout when the cell runs: no cell may outlast the budget
    item.config.option.nbval_cell_timeout = max(1, min(_grader.cell_timeout, state.left()))
    notebook = item.parent
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
    notebook.kernel.await_reply(msg_id, timeout=max(1, min(60, state.left())))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    located = where(item) if _grader else None
    if not located or not located[2] or not located[2]["exercise"]:
        try:
            return (yield)
        except BaseException as error:
            if located:
                learner, chapter, _ = located
                record(item, kind="cell", learner=learner, notebook=chapter,
                       cell=f"code cell {item.cell_num + 1} (id {item.cell.get('id')})", message=_first_line(error))
            raise
        finally:
            if located and _notebook(item).left() <= 0:
                _over_budget(item, _notebook(item))
    learner, chapter, cell = located
    try:
        yield
    except BaseException:  # noqa: BLE001 — what the kernel says about a check is not trusted
        pass
    if _notebook(item).left() <= 0:
        _over_budget(item, _notebook(item))
        raise CheckNotPassed("the notebook's time budget was used up")
    exercise = cell["exercise"]
    seen = workspace.digest(_project(item, chapter))  # before the check: it is what the check sees
    result = _check(item, chapter, exercise)
    record(item, kind="check", learner=learner, notebook=chapter, exercise=exercise,
           outcome=result.outcome.value, message=result.text(), seed=result.seed)
    _grader.checked.setdefault(str(item.parent.path), {})[exercise] = (result.outcome is Outcome.PASS, seen)
    if result.outcome is not Outcome.PASS:
        raise CheckNotPassed(result.text())


def _project(item, chapter: str) -> Path:
    return Path(item.parent.path).parent / workspace.WORK / chapter


def _check(item, chapter: str, exercise: str):
    """Run an exercise's check on the notebook's project as it is now, with the notebook's seed for it
    (and its learner's process in the notebook's sandbox, if there is one)."""
    folder = Path(item.parent.path).parent
    address = isolation.sandbox(folder).address if isolation.enabled() else None
    return _grader.client.run(workspace.module_name(chapter), exercise, _project(item, chapter),
                              seed=seed(Path(item.parent.path), exercise), sandbox_socket=address)


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
    the same seed: its verdict there stands, and the check is not run again. A notebook stopped
    for its time budget has no final state: what it reached stands.
    """
    located = where(item)
    if not located or _notebook(item).over:
        return
    learner, chapter, _ = located
    checked = _grader.checked.pop(str(item.parent.path), {})
    now = workspace.digest(_project(item, chapter))
    for exercise in (p["exercise"] for p in workspace.checkpoint(chapter)["protected"]):
        passed, then = checked.get(exercise, (False, None))
        if exercise and not passed and (then is None or then != now):
            if _notebook(item).left() <= 0:  # the verdicts at the check cells stand
                return
            result = _check(item, chapter, exercise)
            record(item, kind="final", learner=learner, notebook=chapter, exercise=exercise,
                   outcome=result.outcome.value, message=result.text(), seed=result.seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a notebook's last cell: its final state is graded (while its kernel, and so its
    sandbox, still runs), then, once the kernel has ended, its sandbox goes; before each, the
    course's code must be as it was."""
    last = (_grader is not None and getattr(item, "cell", None) is not None
            and (nextitem is None or getattr(nextitem, "parent", None) is not item.parent))
    if last:
        restored(item)  # first: the final state is checked with the course's own code
        final_state(item)
    result = yield
    if last:
        restored(item)  # what the kernel did as it ended
        if isolation.enabled():
            isolation.close(Path(item.parent.path).parent)
    return result


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
        record(item, kind="tampered", learner=located[0], notebook=located[1],
               message="The notebook changed the course's own code (the `checkers` package).")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(error: BaseException) -> str:
    """The line that says what went wrong: the exception at the end of the cell's traceback."""
    inner = getattr(error, "inner_traceback", None)  # nbval keeps the kernel's traceback here
    text = ANSI.sub("", inner if isinstance(inner, str) else "\n".join(inner or [])) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__
