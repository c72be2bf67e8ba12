"""The old way to check, kept for chapters not yet written for the judge/learner boundary.

A legacy chapter's steps touch the learner's objects directly, so the whole check runs in
the learner's process (`learner.op_legacy`). New chapters use `judge.py`; once every
chapter is ported this module goes.
"""
from __future__ import annotations

import importlib
import os
import random
import re
import signal
from pathlib import Path

from . import databases
from .limits import SOFT_TIMEOUT
from .workspace import not_attempted
from .faults import CheckTimeout, describe, learner_frame
from .outcomes import Outcome, Result, Step



class StepFailed(Exception):
    """A step saw something other than what it expected."""

    def __init__(self, expected: str, seen: str, hint: str | None = None):
        super().__init__(seen)
        self.expected, self.seen, self.hint = expected, seen, hint


class Checker:
    """What a step receives as `t`: the project, randomness, and ways to fail clearly."""

    def __init__(self, project: Path, rng: random.Random):
        self.project = project
        self.rng = rng
        self._database_url: str | None = None

    def module(self, name: str):
        """Import one of the learner's modules (errors become ERROR with the learner's line)."""
        return importlib.import_module(name)

    def fail(self, expected: str, seen: str, hint: str | None = None):
        raise StepFailed(expected, seen, hint)

    def require(self, ok, expected: str, seen, hint: str | None = None) -> None:
        """Fail the step unless `ok`; `seen` may be a callable, so it is only built when needed."""
        if not ok:
            self.fail(expected, seen() if callable(seen) else seen, hint)

    def database_url(self) -> str:
        """A URL for a fresh, empty database private to this check (the same on every call).

        SQLite in the check's scratch folder by default. When `DATABASE_URL` names a
        PostgreSQL database, a new schema in it instead, dropped when the check ends.
        """
        if self._database_url is None:
            self._database_url = databases.fresh_database(self.project.parent)
        return self._database_url

    def word(self, prefix: str = "") -> str:
        """A random word, so that hard-coded answers fail."""
        letters = "".join(self.rng.choice("bcdfghjklmnprstvz") + self.rng.choice("aeiou") for _ in range(3))
        return prefix + letters

    def json(self, response, expected_status: int, what: str, hint: str | None = None):
        """Return a response's JSON body after checking its status and content type."""
        request = f"`{response.request.method} {_path(response.request)}`"
        self.require(
            response.status_code == expected_status,
            f"{request} answers {expected_status}, with {what}",
            lambda: f"{request} answered {response.status_code}{_body_excerpt(response)}",
            hint,
        )
        self.require(
            response.is_json,
            f"{request} answers with JSON (`Content-Type: application/json`)",
            f"`Content-Type: {response.content_type}`{_body_excerpt(response)}",
            "Did you return a `dict` or `list` (or use `jsonify`) rather than a string?",
        )
        return response.get_json()


ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def show(value, limit: int = 120) -> str:
    """Describe a learner's value safely: repr can raise, recurse or be enormous.

    Memory addresses are dropped: they change every run and mean nothing to a learner.
    """
    try:
        text = ADDRESS.sub("", repr(value))
    except BaseException:  # noqa: BLE001 — a broken __repr__ is the learner's, not ours
        text = f"<{type(value).__name__} whose repr() fails>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _path(request) -> str:
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def _body_excerpt(response) -> str:
    body = response.get_data(as_text=True).strip()
    if not body:
        return ""
    body = " ".join(body.split())
    return f": `{body[:100]}{'…' if len(body) > 100 else ''}`"


def raised(call) -> Exception | None:
    """Run `call`; return the exception it raised, or None (the step decides what was right)."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 — the learner's exception is the step's evidence
        return error
    return None


# --- running an exercise ---------------------------------------------------------------


def run_legacy(chapter, key: str, workdir: Path, seed: int) -> dict:
    """Check exercise `key` of a legacy chapter on the project in `workdir` (this process's copy)."""
    timer = hasattr(signal, "setitimer")
    if timer:
        signal.setitimer(signal.ITIMER_REAL, SOFT_TIMEOUT)
    try:
        return _run(chapter, chapter.get(key), workdir, random.Random(seed), {}).to_dict()
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
        databases.clean_up()


def _run(chapter, exercise, workdir: Path, rng: random.Random, done: dict) -> Result:
    """Check one exercise after those it requires; `done` keeps results already known."""
    if exercise.key in done:
        return done[exercise.key]
    key = exercise.key
    untouched = not_attempted(chapter.name, exercise.key, workdir)
    if untouched:
        done[key] = Result(key, exercise.title, Outcome.NOT_ATTEMPTED, message=untouched)
        return done[key]
    for required in exercise.requires:
        earlier = _run(chapter, required, workdir, rng, done)
        if earlier.outcome is not Outcome.PASS:
            state = earlier.outcome.value
            done[key] = Result(
                key,
                exercise.title,
                Outcome.FAIL,
                message=(
                    f"Skipped: this exercise builds on exercise {required.number} "
                    f"({required.title}), which reports {state}. Fix exercise {required.number} first."
                ),
            )
            return done[key]
    done[key] = _run_steps(exercise, Checker(workdir, rng))
    return done[key]


def _run_steps(exercise, checker: Checker) -> Result:
    steps: list[Step] = []
    outcome, where, message = Outcome.PASS, None, None
    for step in exercise.steps:
        name, function = step.name, step.function
        if outcome is not Outcome.PASS:
            steps.append(Step(name, "skipped"))
            continue
        try:
            function(checker)
            steps.append(Step(name, "passed"))
        except StepFailed as failure:
            steps.append(Step(name, "failed", failure.expected, failure.seen, failure.hint))
            outcome = Outcome.FAIL
        except CheckTimeout as stop:
            outcome, where = Outcome.TIMEOUT, learner_frame(stop, checker.project)
            message = (
                f"Your code was still running after {SOFT_TIMEOUT:g} seconds, so the check stopped it"
                + (" here:" if where else ".")
            )
            steps.append(Step(name, "timeout", hint="Is there a loop that never ends, or a wait for something that never comes?"))
        except BaseException as error:  # noqa: BLE001 — anything the learner's code raises
            outcome, where = Outcome.ERROR, learner_frame(error, checker.project)
            message = describe(error).replace(str(checker.project) + os.sep, "") + (" here:" if where else ".")
            steps.append(Step(name, "error"))
    return Result(exercise.key, exercise.title, outcome, steps, message, where)





speed_up = databases.speed_up
