"""Chapters and exercises: how checks are declared, and the learner's API.

A chapter module declares its exercises and their steps; the same module is imported in
the learner's kernel (for `check()`, `hint()`, `solution()`) and in the check server,
where the steps actually run, in a fresh process, away from the kernel's state.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import __version__, progress, workspace
from .outcomes import Outcome, Result, Text

GRADING = "TICKETHUB_GRADING"  # plain nbval grading: a check that does not pass fails its cell
GRADER = "TICKETHUB_GRADE_RUN"  # set for every process of `checkers grade`, which runs every check itself


class CheckFailed(AssertionError):
    """Raised in grading mode so that nbval counts a check that did not pass."""


class Exercise:
    """One exercise: a title, tiered hints, and a chain of steps run in order."""

    def __init__(self, chapter: Chapter, key: str, title: str, hints, requires):
        self.chapter, self.key, self.title = chapter, key, title
        self.hints = list(hints)
        self.requires = list(requires)
        self.steps: list[tuple[str, callable]] = []

    def step(self, name: str):
        """Declare the next step of the chain; it may use what earlier steps stored on `t`."""

        def add(function):
            self.steps.append((name, function))
            return function

        return add

    # the learner's API ---------------------------------------------------------------

    def check(self) -> None:
        """Check your code and show what is right or wrong with it."""
        if os.environ.get(GRADER):  # the grader checks outside the kernel; doing it twice is waste
            _show(Text(f"Exercise {self.number}", "Checked by the grader, outside this notebook."))
            return
        result = self.chapter.run_check(self.key)
        _show(result)
        progress.record(self.chapter.name, self.key, result.outcome)  # never raises, never when grading
        if os.environ.get(GRADING) and result.outcome is not Outcome.PASS:
            raise CheckFailed(f"{self.key}: {result.outcome.value}")

    def hint(self, level: int = 1) -> None:
        """Show a hint; `hint(2)` and up say more."""
        if not self.hints:
            _show(Text(f"Hint for exercise {self.number}", "There is no hint for this one."))
            return
        level = max(1, min(int(level), len(self.hints)))
        more = f" (of {len(self.hints)})" if len(self.hints) > 1 else ""
        body = self.hints[level - 1]
        if level < len(self.hints):
            body += f"\n\nStill stuck? Try `{self.key}.hint({level + 1})`."
        _show(Text(f"Hint {level}{more} for exercise {self.number}", body))

    def solution(self) -> None:
        """Show the reference solution."""
        cells = workspace.exercise_files(self.chapter.name, self.key)
        body = "\n\n".join(f"# {c['path']}\n{c['solution']}" for c in cells)
        _show(Text(f"Solution to exercise {self.number}: {self.title}", body, code=True))

    @property
    def number(self) -> str:
        return self.key.removeprefix("ex")

    def __repr__(self) -> str:
        return f"<exercise {self.number} of chapter {self.chapter.name}: {self.title}>"


class Chapter:
    """A chapter's exercises, and the setup and reset of its project folder."""

    def __init__(self, module: str, title: str):
        self.module = module
        # checkers.ch01_project_structure -> 01-project-structure
        self.name = module.rsplit(".", 1)[-1].removeprefix("ch").replace("_", "-")
        self.title = title
        self.exercises: list[Exercise] = []
        self.root: Path | None = None
        self.warm_ups: list = []

    def exercise(self, title: str, hints=(), requires=()) -> Exercise:
        ex = Exercise(self, f"ex{len(self.exercises) + 1}", title, hints, requires)
        self.exercises.append(ex)
        return ex

    def warm_up(self, function):
        """Declare work the check server does once, before it forks, so checks start warm."""
        self.warm_ups.append(function)
        return function

    def get(self, key: str) -> Exercise:
        return next(ex for ex in self.exercises if ex.key == key)

    # kernel side -----------------------------------------------------------------------

    def setup(self) -> None:
        """Create (or reuse) this chapter's project and move into it."""
        base = notebook_dir()
        self.root = base / workspace.WORK / self.name
        self.root.mkdir(parents=True, exist_ok=True)
        workspace.materialise(self.name, self.root)
        os.chdir(self.root)
        from . import server

        if not os.environ.get(GRADER):
            server.client().start()  # warms up in the background while you read
        print(f"TicketHub checkers {__version__} · chapter {self.name[:2]}: {self.title}")
        print(f"Your project folder: {workspace.WORK}/{self.name}/")
        print("Setup complete")

    def reset(self) -> None:
        """Start this chapter again from its checkpoint, keeping a backup of your files."""
        base = notebook_dir()
        root = base / workspace.WORK / self.name
        saved = workspace.backup(root)
        self.setup()
        if saved:
            print(f"Your previous files are in {saved.relative_to(base).as_posix()}/")

    def run_check(self, key: str, root: Path | None = None) -> Result:
        """Run one exercise's check on a project folder in a fresh process."""
        from . import server

        if root is None:
            if self.root is None:
                self.setup()
            root = self.root
        return server.client().run(self.module, key, root)


_notebook_dir: Path | None = None


def notebook_dir() -> Path:
    """Return the folder of the running notebook, even after setup moved into a project."""
    global _notebook_dir
    if _notebook_dir is None:
        cwd = Path.cwd()
        _notebook_dir = cwd.parent.parent if cwd.parent.name == workspace.WORK else cwd
    return _notebook_dir


def _show(obj) -> None:
    try:
        from IPython.display import display
    except ImportError:  # plain Python: print the text form
        print(repr(obj))
    else:
        display(obj)
