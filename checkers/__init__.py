"""TicketHub's exercise engine: checks, hints and solutions for the course's notebooks.

The package is in layers, each folder one layer, and a layer imports only those below it
(the contracts are in pyproject.toml and checked by the tests):

    authoring/   build, execute, bench, mutate, release: the maintainers' commands
    grading/     the grade command and its pytest plugin
    chapters/    one module per chapter: its exercises and their steps
    notebook/    the learner's API (setup, check, hint, solution), progress, dashboards
    engine/      declarations, the judge, the learner's process, the sandbox and server
    paths.py     where things are and what settings are called
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import re
import sys

__version__ = "0.2.0"

from .engine.workspace import fresh_import  # noqa: E402  (used by the notebooks' demos)

__all__ = ["__version__", "fresh_import"]

# names that saved notebooks import, from before the package had layers
OLD_NAMES = {"checkers.dashboard": "checkers.notebook.dashboard"}
OLD_CHAPTER = re.compile(r"checkers\.(ch\d\d_\w+)")


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`from checkers.ch01_project_structure import ...` still works: it is the same module."""

    def find_spec(self, name, path=None, target=None):
        old = OLD_CHAPTER.fullmatch(name)
        if name in OLD_NAMES or old:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        old = OLD_CHAPTER.fullmatch(spec.name)
        return importlib.import_module(OLD_NAMES.get(spec.name) or f"checkers.chapters.{old.group(1)}")

    def exec_module(self, module):
        pass  # already executed under its own name


if not any(isinstance(finder, _OldNames) for finder in sys.meta_path):
    sys.meta_path.append(_OldNames())
