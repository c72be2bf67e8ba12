"""How a chapter declares its exercises: titles, hints, chains of steps, given code to keep.

A step is a function `step(t, state) -> state`: it receives what the step before it
returned (the first step gets what `defines` found, or None) and reaches the learner's
code only through `t` (see `judge.py`). Steps run in order; the first that fails explains
why, and the rest are skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from ..paths import chapter_name
from . import catch, testrun, workspace
from .catch import Bug, Correct
from .judge import show
from .limits import SOFT_TIMEOUT


@dataclass
class StepDeclaration:
    name: str
    function: Callable
    # exception type name -> targeted hint: a text, or a function of the `LearnerError` that gives one (or None,
    # when what the error says is not the cause that hint is about)
    errors: dict[str, str | Callable] = field(default_factory=dict)

    def on_error(self, error) -> str | None:
        for name in error.mro:
            hint = self.errors.get(name.rsplit(".", 1)[-1])
            if callable(hint):
                hint = hint(error)
            if hint:
                return hint
        return None


class Names:
    """What a `defines` step found: the module and each declared name, as handles."""

    def __init__(self, module, found: dict):
        self.module = module
        self.__dict__.update(found)


class Exercise:
    """One exercise: a title, tiered hints, and a chain of steps run in order."""

    def __init__(self, chapter: Chapter, key: str, title: str, hints=(), requires=()):
        self.chapter, self.key, self.title = chapter, key, title
        self.hints = list(hints)
        self.requires = list(requires)
        self.steps: list[StepDeclaration] = []
        self.budget = SOFT_TIMEOUT  # seconds of the learner's code this exercise's check may run
        self.tests: str | None = None  # the file of the learner's tests, for an exercise declared by `tests_catch`
        self._catch_steps = 0

    @property
    def number(self) -> str:
        return self.key.removeprefix("ex")

    @property
    def seed_free(self) -> bool:
        """Can no seed change its verdict? So for an exercise of `tests_catch` steps alone: they run the learner's
        tests on fixed variants of the reference and draw nothing (a sweep of seeds would repeat one run)."""
        return self.tests is not None and len(self.steps) == self._catch_steps

    def step(self, name: str, errors: dict[str, str | Callable] | None = None):
        """Declare the next step; `errors` maps an exception's type name to a targeted hint (see `StepDeclaration`).

        The chapter's own `errors` apply too, after the step's.
        """

        def add(function):
            self.steps.append(StepDeclaration(name, function, {**self.chapter.errors, **(errors or {})}))
            return function

        return add

    def defines(self, module: str, *, path: str | None = None, classes=(), functions=(), errors=None, **instances):
        """Declare the first step: `module` imports and keeps the given names the cell provides.

        `classes` and `functions` name what must be classes and callables; each keyword names
        an object that must be an instance of the given library class. A missing name is
        answered with the line of the starter that defines it ("Did you keep the line …?").
        `path` loads one file as `module` without importing its package first. `errors` as for `step`.
        """
        wanted = [(n, "class") for n in classes] + [(n, "function") for n in functions]
        wanted += [(n, kind) for n, kind in instances.items()]
        file = path or module_file(self.chapter.name, module)
        shown = [f"`{n}`" + (f", {_article(kind.__name__)} `{kind.__name__}`" if isinstance(kind, type) else "")
                 for n, kind in wanted]
        names = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]

        def defined(t, state):
            loaded = t.load(module, path) if path else t.module(module)
            found = {}
            for name, kind in wanted:
                value = t.get(loaded, name)
                if kind == "class":
                    ok, what = getattr(value, "is_class", False), f"a class `{name}`"
                elif kind == "function":
                    ok, what = getattr(value, "is_callable", False), f"a function `{name}`"
                else:
                    ok, what = t.isa(value, kind), f"{_article(kind.__name__)} `{kind.__name__}` in `{name}`"
                line = given_line(self.chapter.name, file, name)
                t.require(ok, f"{what} in `{file}`", lambda: f"`{name}` is {show(value)}",
                          f"Did you keep the line `{line}`?" if line else
                          f"Did you define `{name}` in `{file}`?")
                found[name] = value
            return Names(loaded, found)

        hints = {**self.chapter.errors, **(errors or {})}
        self.steps.insert(0, StepDeclaration(f"`{file}` defines {names}", defined, hints))

    def tests_catch(self, path: str, bugs: list[Bug], accepts: list[Correct] = (), hint: str | None = None):
        """Declare the steps of an exercise in which the learner writes pytest tests, in the file `path`.

        The tests must pass on the chapter's reference and on each `Correct` variant of it, and at
        least one must fail on each `Bug`, a variant with a seeded bug (see `catch.py`). `hint` is
        for tests that fail on the reference. Each run has the time of an exercise of its own.
        """
        if self.requires or self.steps:
            raise ValueError(f"{self.key}: the tests of `tests_catch` run first, in a learner's process that has run "
                             "none of the learner's code: declare them before any other step, with no `requires`")
        if not bugs:
            raise ValueError(f"{self.key}: without a seeded bug, a test that asserts nothing would pass")
        self.tests = path
        for name, function in catch.steps(self, path, list(bugs), list(accepts), hint):
            self.steps.append(StepDeclaration(name, function))
        self._catch_steps = len(self.steps)
        runs = 1 + len(accepts) + len(bugs)
        self.budget = (SOFT_TIMEOUT + testrun.start_time()) * runs + SOFT_TIMEOUT  # each run's, and the rest's
        if testrun.warm_up not in self.chapter.warm_ups:
            self.chapter.warm_up(testrun.warm_up)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def module_file(chapter: str, module: str) -> str:
    """The project file of a module: `tickethub/errors.py`, or `tickethub/__init__.py` for a package."""
    try:
        record = workspace.checkpoint(chapter)
    except LookupError:  # a new chapter's first build, which writes its checkpoint: a module is a file until then
        record = {"start": {}, "cells": []}
    known = set(record["start"]) | {c["path"] for c in record["cells"]}
    package = module.replace(".", "/") + "/__init__.py"
    return package if package in known else module.replace(".", "/") + ".py"


DEFINITION = "^[ \t]*(?:class {0}\\b|def {0}\\(|{0}\\s*(?::[^=]*)?=)"


def given_line(chapter: str, file: str, name: str) -> str | None:
    """The starter's line that defines `name` in `file` (the code the cell gives the learner)."""
    texts = [c["starter"] for c in workspace.checkpoint(chapter)["cells"] if c["path"] == file]
    texts.append(workspace.checkpoint(chapter)["start"].get(file, ""))
    pattern = re.compile(DEFINITION.format(re.escape(name)), re.M)
    for text in texts:
        for line in text.splitlines():
            if pattern.match(line):
                return line.strip().rstrip(":") + (":" if line.rstrip().endswith(":") else "")
    return None


class Chapter:
    """A chapter's declared exercises, and the work its checks share."""

    exercise_class = Exercise

    def __init__(self, module: str, title: str, errors: dict[str, str | Callable] | None = None):
        self.module = module
        self.name = chapter_name(module)
        self.title = title
        self.exercises: list[Exercise] = []
        self.warm_ups: list = []
        # targeted hints for every step of every exercise (as `Exercise.step`'s): a mistake in one file that
        # breaks the imports of all of them, say
        self.errors = dict(errors or {})

    def exercise(self, title: str, hints=(), requires=()) -> Exercise:
        ex = self.exercise_class(self, f"ex{len(self.exercises) + 1}", title, hints, requires)
        self.exercises.append(ex)
        return ex

    def warm_up(self, function):
        """Declare work the check server does once, on this chapter's first check, before it forks."""
        self.warm_ups.append(function)
        return function

    def get(self, key: str) -> Exercise:
        return next(ex for ex in self.exercises if ex.key == key)

    def chain(self, key: str) -> list[Exercise]:
        """The exercise and every exercise it requires, each once."""
        seen: list[Exercise] = []

        def visit(ex):
            for required in ex.requires:
                visit(required)
            if ex not in seen:
                seen.append(ex)

        visit(self.get(key))
        return seen
