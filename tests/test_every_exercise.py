"""Does every exercise of every chapter pass on its reference, and say NOT_ATTEMPTED before it is tried?

Chapter test modules (test_chNN_topic.py) add what is particular to each exercise: an
alternative correct answer, and the plausible wrong answers that must fail.
"""
import importlib
import os
import subprocess
import sys

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


@pytest.mark.parametrize("chapter", [c for c in workspace.chapters()
                                     if any(p.startswith("tests/") for p in workspace.files(c, "solution"))])
def test_the_reference_project_passes_its_own_tests(tmp_path, chapter):
    """Does each chapter's finished project pass every test in its `tests/` folder, the learner's earlier ones too?"""
    workspace.write_files(tmp_path, workspace.files(chapter, "solution"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETHUB_", "FLASK_")) and k != "DATABASE_URL"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "tests"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
