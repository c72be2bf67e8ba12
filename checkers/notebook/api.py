"""The learner's side of a chapter: `setup()`, `reset()`, and `exN.check()`, `hint()`, `solution()`.

A chapter module declares its exercises with this module's `Chapter`; the same module is
imported in the learner's kernel (for this API) and in the check server's judge, where the
steps run (see `checkers.engine`). Nothing here runs a step: `check()` asks the server.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import __version__
from ..engine import declare, server, workspace
from ..engine.catch import Bug, Correct  # noqa: F401  (so that a chapter imports its vocabulary from here)
from ..engine.outcomes import Outcome, Result, Text
from ..paths import GRADER, GRADING
from . import progress


# what a graded edition (`python -m checkers release`) says instead of a solution or the last hint
WITHHELD = ("Not available in this edition of the course: your instructor withholds this chapter's "
            "solutions (and its last hints, which nearly give them) until its work is graded.")


class CheckFailed(AssertionError):
    """Raised in grading mode so that nbval counts a check that did not pass."""


class Exercise(declare.Exercise):
    """An exercise as the learner uses it."""

    last: Result | None = None  # the latest result in this kernel, with its seed (`print(ex1.last)`)

    def check(self, seed: int | None = None) -> None:
        """Check your code and show what is right or wrong with it; `seed` replays a check."""
        if os.environ.get(GRADER):  # the grader checks outside the kernel; doing it twice is waste
            _show(Text(f"Exercise {self.number}", "Checked by the grader, outside this notebook."))
            return
        result = self.chapter.run_check(self.key, seed=seed)
        self.last = result
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
        withheld = workspace.withheld(self.chapter.name) and len(self.hints) > 1
        body = WITHHELD if withheld and level == len(self.hints) else self.hints[level - 1]
        if level + 1 == len(self.hints):
            body += (f"\n\nThe last hint, `{self.key}.hint({level + 1})`, is not available in this edition."
                     if withheld else
                     f"\n\nStill stuck? `{self.key}.hint({level + 1})` is the last hint, and nearly the solution.")
        elif level < len(self.hints):
            body += f"\n\nStill stuck? Try `{self.key}.hint({level + 1})`."
        _show(Text(f"Hint {level}{more} for exercise {self.number}", body))

    def solution(self) -> None:
        """Show the reference solution."""
        cells = workspace.exercise_files(self.chapter.name, self.key)
        if any(c["solution"] is None for c in cells):
            _show(Text(f"Solution to exercise {self.number}: {self.title}", WITHHELD))
            return
        body = "\n\n".join(f"# {c['path']}\n{c['solution']}" for c in cells)
        _show(Text(f"Solution to exercise {self.number}: {self.title}", body, code=True))

    def __repr__(self) -> str:
        return f"<exercise {self.number} of chapter {self.chapter.name}: {self.title}>"


class Chapter(declare.Chapter):
    """A chapter's exercises, and the setup and reset of its project folder."""

    exercise_class = Exercise

    def __init__(self, module: str, title: str, errors=None):
        super().__init__(module, title, errors)
        self.root: Path | None = None

    def setup(self) -> None:
        """Create (or reuse) this chapter's project and move into it."""
        progress.record_notebook_dir(Path.cwd())
        base = progress.notebook_dir()
        self.root = base / workspace.WORK / self.name
        self.root.mkdir(parents=True, exist_ok=True)
        workspace.materialise(self.name, self.root)
        os.chdir(self.root)
        if not os.environ.get(GRADER):
            server.client().start()  # warms up in the background while you read
        print(f"TicketHub checkers {__version__} · chapter {self.name[:2]}: {self.title}")
        print(f"Your project folder: {workspace.WORK}/{self.name}/")
        print("Setup complete")

    def reset(self) -> None:
        """Start this chapter again from its checkpoint, keeping a backup of your files."""
        progress.record_notebook_dir(Path.cwd())
        base = progress.notebook_dir()
        saved = workspace.backup(base / workspace.WORK / self.name)
        self.setup()
        if saved:
            print(f"Your previous files are in {saved.relative_to(base).as_posix()}/")

    def run_check(self, key: str, root: Path | None = None, seed: int | None = None) -> Result:
        """Run one exercise's check on a project folder, in fresh processes."""
        if root is None:
            if self.root is None:
                self.setup()
            root = self.root
        return server.client().run(self.module, key, root, seed=seed)


def _show(obj) -> None:
    try:
        from IPython.display import display
    except ImportError:  # plain Python: print the text form
        print(repr(obj))
    else:
        display(obj)
