"""Does every exercise of every chapter pass on its reference, and say NOT_ATTEMPTED before it is tried?

Chapter test modules (test_chNN_topic.py) add what is particular to each exercise: an
alternative correct answer, and the plausible wrong answers that must fail.
"""
import importlib

import pytest

from checkers.engine import workspace
from checkers.paths import module_name
from checkers.engine.outcomes import Outcome
from conftest import assert_outcome

EXERCISES = [
    (chapter, key)
    for chapter in workspace.chapters()
    for key in sorted({c["exercise"] for c in workspace.checkpoint(chapter)["cells"] if c["exercise"]})
]


def files(chapter: str, key: str) -> str:
    return ", ".join(f"`{c['path']}`" for c in workspace.exercise_files(chapter, key))


@pytest.mark.parametrize(("chapter", "key"), EXERCISES)
def test_reference_passes(project, chapter, key):
    assert_outcome(project(chapter).check(key), Outcome.PASS)


@pytest.mark.parametrize(("chapter", "key"), EXERCISES)
def test_starter_is_not_attempted(project, chapter, key):
    assert_outcome(project(chapter, "starter").check(key), Outcome.NOT_ATTEMPTED, files(chapter, key))


@pytest.mark.parametrize(("chapter", "key"), EXERCISES)
def test_unrun_cell_is_not_attempted(project, chapter, key):
    """Is an exercise whose cell never ran (its file missing, or the previous chapter's) not attempted?"""
    assert_outcome(project(chapter, "start").check(key), Outcome.NOT_ATTEMPTED)


@pytest.mark.parametrize("chapter", workspace.chapters())
def test_checks_leave_the_project_untouched(project, chapter):
    """Do checks keep what they write (databases, migrations, files) out of the learner's folder?"""
    p = project(chapter)
    before = sorted(str(f.relative_to(p.root)) for f in p.root.rglob("*"))
    for key in sorted({k for c, k in EXERCISES if c == chapter}):
        p.check(key)
    assert sorted(str(f.relative_to(p.root)) for f in p.root.rglob("*")) == before


@pytest.mark.parametrize("chapter", workspace.chapters())
def test_warm_ups_run_cleanly(chapter):
    """Does each chapter's warm-up (run by the server before it forks, where a failure is only logged) work?"""
    for warm_up in importlib.import_module(module_name(chapter)).chapter.warm_ups:
        warm_up()
