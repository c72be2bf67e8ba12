"""Where the course keeps things, and the names of its settings: the package's leaf layer.

Every other layer may import this module; it imports nothing of the package.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent  # the repository, when the package is installed in editable mode
CHECKPOINTS = PACKAGE / "checkpoints"
WORK = "work"  # each chapter's project lives in work/NN-topic/ beside the notebook
NOTEBOOKS = "notebooks"  # the course's edition of the learner notebooks, tracked by git
MINE = "my-notebooks"  # the learner's own copies of them (and their work/), which git ignores
BACKUPS = ".backups"

GRADING = "TICKETHUB_GRADING"  # plain nbval grading: a check that does not pass fails its cell
GRADER = "TICKETHUB_GRADE_RUN"  # set for every process of `checkers grade`, which runs every check itself
SCRUBBED_ENV = ("TICKETHUB_", "FLASK_")  # the kernel's settings must not leak into a check


def module_name(chapter: str) -> str:
    """checkers.chapters.ch01_project_structure for 01-project-structure."""
    return "checkers.chapters.ch" + chapter.replace("-", "_")


def chapter_name(module: str) -> str:
    """01-project-structure for checkers.chapters.ch01_project_structure."""
    return module.rsplit(".", 1)[-1].removeprefix("ch").replace("_", "-")
