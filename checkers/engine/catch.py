"""An exercise kind: the learner writes pytest tests, which must pass on correct code and catch seeded bugs.

The chapter declares it in one call (see `declare.Exercise.tests_catch`):

    ex2.tests_catch("tests/test_overview_queries.py", bugs=[
        Bug("the overview loads each event's bookings with a query of its own (N+1)", OVERVIEW, old, new,
            hint="Does your test compare a page of a few events with a page of many?"),
        ...
    ], accepts=[Correct("the overview loads its events with `joinedload` and `selectinload`", OVERVIEW, old, new)])

Its steps: the file is Python that defines a test; pytest passes it on the chapter's reference
(every test passes, at least one runs); on each `Correct` variant too; and on each `Bug` (the
reference with a small edit) at least one test fails. Each run is the reference project (as the
learner has it at this exercise: the earlier ones solved, the later ones as their starters) with
the learner's files of the exercise, run on the learner's
side (`Checker.pytest`), never here. A test that asserts nothing, or skips, lets every bug through.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import workspace
from .judge import LearnerGone, LearnerTimeout

MAX_BYTES = 1 << 20  # a test module larger than this is not read


@dataclass(frozen=True)
class Variant:
    """The reference with a small edit: `old` (which must be there once) becomes `new` in `file`.

    `more` holds further `(file, old, new)` edits of the same variant.
    """

    description: str  # what the variant does, as the end of "... when <description>"
    file: str
    old: str
    new: str
    hint: str | None = None  # what the learner's tests should do about it
    more: tuple[tuple[str, str, str], ...] = ()

    def apply(self, files: dict[str, str]) -> dict[str, str]:
        files = dict(files)
        for file, old, new in ((self.file, self.old, self.new), *self.more):
            text = files.get(file, "")
            if text.count(old) != 1:  # the chapter's reference changed under the variant: a fault of the course
                raise ValueError(f"the variant {self.description!r} expects {old!r} once in {file}, "
                                 f"found it {text.count(old)} times")
            files[file] = text.replace(old, new)
        return files


class Bug(Variant):
    """A seeded bug: at least one of the learner's tests must fail on it."""


class Correct(Variant):
    """Another correct way to write the code: every one of the learner's tests must pass on it too."""


SKIPPED = ("A skipped (or expected-to-fail) test checks nothing. Did you leave a `pytest.skip(...)`, "
           "`@pytest.mark.skip` or `@pytest.mark.xfail` in?")
NO_TEST = ("pytest collects the functions named `test_...` at the top level of the module, and the `test_...` "
           "methods of classes named `Test...` that have no `__init__`. Is a test inside another function, or "
           "named otherwise?")
COLLECT = ("That is what `python -m pytest` says in your project too. Does the module import only what the "
           "project has (names spelt as they are defined)?")
WRONG = ("A test that fails on correct code blames the wrong thing. Read pytest's message above: does the test "
         "assert what the exercise asks for, and count only what it means to count?")
TOO_STRICT = ("Your tests fail on code that is correct in another way. Do they assert how the code works (an exact "
              "number, a piece of SQL, a name in the source) rather than what must stay true?")
MISSED = "What would a test have to assert to notice that? Write a test that fails on that code."


def steps(exercise, path: str, bugs: list[Bug], accepts: list[Correct], hint: str | None):
    """The exercise's steps, as (name, function) pairs, in order."""
    chapter, key = exercise.chapter.name, exercise.key

    def written(t, state):
        own = sorted({path} | {c["path"] for c in workspace.exercise_files(chapter, key)})
        texts = {rel: _read(t, t.project / rel, rel) for rel in own}
        names = t.test_functions(texts[path], path)
        t.require(names, f"a test in `{path}`: a function whose name starts with `test`",
                  "it defines no test function", NO_TEST)
        # the reference as the learner has it here (the earlier exercises solved), with the learner's tests
        return {**workspace.solved_before(chapter, key), **texts}

    def on_reference(t, reference):
        _passes(t, t.pytest(reference, path), path, "the reference (correct code)", hint or WRONG)
        return reference

    def on(variant: Correct):
        def passes(t, reference):
            _passes(t, t.pytest(variant.apply(reference), path), path, f"code where {variant.description}",
                    variant.hint or TOO_STRICT)
            return reference

        return f"they pass when {variant.description} (also correct)", passes

    def catching(bug: Bug):
        def catches(t, reference):
            report = _finished(t.pytest(bug.apply(reference), path))
            failed = report["errors"] or [test for test in report["tests"] if test["outcome"] == "failed"]
            t.require(failed, f"a test that fails when {bug.description}",
                      lambda: f"{_summary(report['tests'])} when {bug.description}", bug.hint or MISSED)
            return reference

        return f"they fail when {bug.description}", catches

    return [(f"`{path}` is Python that defines a test (`def test_...`)", written),
            ("its tests pass on the chapter's reference (correct code)", on_reference),
            *(on(variant) for variant in accepts), *(catching(bug) for bug in bugs)]


def _read(t, file: Path, rel: str) -> str:
    """The text of one of the learner's files, as the judge may read it: a regular file, not too big."""
    t.require(file.is_file(), f"the file `{rel}`", "there is no such file", "Did you run the exercise's cell?")
    size = file.stat().st_size
    t.require(size <= MAX_BYTES, f"`{rel}`, a test module of reasonable size", f"it has {size} bytes",
              "Is something writing into it in a loop?")
    return file.read_text(encoding="utf-8", errors="replace")


def _finished(report: dict) -> dict:
    """The report of a run that finished; a run stopped for time, or that died, is the learner's TIMEOUT or ERROR."""
    if "timeout" in report:
        raise LearnerTimeout(report["timeout"] if isinstance(report["timeout"], str) else None)
    if "crashed" in report:
        raise LearnerGone(f"{report['crashed']}, running your tests")
    if not _well_formed(report):  # the run's process ran the learner's tests, which could write anything there
        raise LearnerGone("a test run answered a report that is not pytest's")
    return report


def _well_formed(report: dict) -> bool:
    """Does a report have the shape `testrun.Collector` gives it?"""
    if not all(isinstance(report.get(name), list) for name in ("collected", "errors", "tests", "skipped")):
        return False
    texts = [*report["collected"], *report["skipped"]]
    for name, keys in (("tests", ("name", "outcome", "text")), ("errors", ("name", "text"))):
        if not all(isinstance(entry, dict) for entry in report[name]):
            return False
        texts += [entry.get(key) for entry in report[name] for key in keys]
    return all(type(text) is str for text in texts)


def _passes(t, report: dict, path: str, where: str, hint: str) -> None:
    """Require every test of a run to pass, and at least one to run."""
    report = _finished(report)
    for error in report["errors"]:
        t.fail(f"pytest collects `{path}` on {where}", "pytest could not collect it:\n" + _quoted(error["text"]),
               COLLECT)
    t.require(report["collected"], f"pytest collects at least one test from `{path}`",
              "pytest collected no test" + (f" (the module was skipped: `{report['skipped'][0]}`)"
                                            if report["skipped"] else ""), SKIPPED if report["skipped"] else NO_TEST)
    for test in report["tests"]:
        if test["outcome"] == "failed":
            phase = "" if test["when"] == "call" else f" (in its {test['when']})"
            t.fail(f"every test passes on {where}", f"`{_short_name(test['name'])}` failed{phase}:\n"
                   + _quoted(test["text"]), hint)
    if not any(test["outcome"] == "passed" for test in report["tests"]):
        test = report["tests"][0] if report["tests"] else {"name": path, "outcome": "skipped", "text": ""}
        t.fail(f"at least one test that runs and passes on {where}", f"`{_short_name(test['name'])}` was "
               f"{'skipped' if test['outcome'] == 'skipped' else 'expected to fail (xfail)'}"
               + (f": `{test['text']}`" if test["text"] else ""), SKIPPED)


def _quoted(text: str) -> str:
    """pytest's text, a line of code each (backticks in it become quotes)."""
    return "\n".join(f"`{line.replace('`', chr(39))}`" for line in str(text).splitlines() if line.strip())


def _short_name(node: str) -> str:
    return str(node).rsplit("::", 1)[-1] if "::" in str(node) else str(node)


def _summary(tests: list[dict]) -> str:
    """What a run's tests did, none of which failed: "all 3 tests passed", "1 test passed and 1 was skipped"."""
    passed = sum(test["outcome"] == "passed" for test in tests)
    others = len(tests) - passed
    if not passed:
        return "no test ran (every one was skipped)"
    said = f"all {passed} tests passed" if passed > 1 and not others else f"{passed} test{'s' * (passed > 1)} passed"
    return said + (f" and {others} {'was' if others == 1 else 'were'} skipped" if others else "")
