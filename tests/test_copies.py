"""Do the learner's own copies of the notebooks survive every update of the course, and git pull?"""
import shutil
import subprocess

import pytest

from checkers.notebook import copies
from checkers.paths import MINE, NOTEBOOKS, WORK


@pytest.fixture
def course(tmp_path):
    """A course folder with two notebooks, and an empty place for the learner's copies."""
    (tmp_path / NOTEBOOKS).mkdir()
    for name in ("index", "00-welcome"):
        (tmp_path / NOTEBOOKS / f"{name}.ipynb").write_text(f'{{"cells": ["{name} v1"]}}\n')
    return tmp_path


def sync(root):
    return copies.sync(root / NOTEBOOKS, root / MINE)


def edit(path, text):
    path.write_text(text)
    return path


def test_the_first_sync_copies_every_notebook(course):
    assert sync(course) == [f"new: {MINE}/00-welcome.ipynb", f"new: {MINE}/index.ipynb"]
    assert (course / MINE / "00-welcome.ipynb").read_text() == '{"cells": ["00-welcome v1"]}\n'
    assert sync(course) == []  # nothing changed: nothing said, nothing written


def test_a_new_chapter_appears_and_an_untouched_copy_is_updated(course):
    sync(course)
    edit(course / NOTEBOOKS / "01-project-structure.ipynb", "{}\n")
    edit(course / NOTEBOOKS / "00-welcome.ipynb", '{"cells": ["00-welcome v2"]}\n')
    assert sync(course) == [f"updated: {MINE}/00-welcome.ipynb", f"new: {MINE}/01-project-structure.ipynb"]
    assert (course / MINE / "00-welcome.ipynb").read_text() == '{"cells": ["00-welcome v2"]}\n'


def test_a_changed_copy_is_kept_and_the_new_version_goes_beside_it(course):
    sync(course)
    mine = edit(course / MINE / "00-welcome.ipynb", '{"cells": ["my answers"]}\n')
    edit(course / NOTEBOOKS / "00-welcome.ipynb", '{"cells": ["00-welcome v2"]}\n')
    said = sync(course)
    assert len(said) == 1 and "is yours and is kept as it is" in said[0], said
    assert mine.read_text() == '{"cells": ["my answers"]}\n'
    assert (course / MINE / "00-welcome (new version).ipynb").read_text() == '{"cells": ["00-welcome v2"]}\n'
    assert sync(course) == []  # said once, not at every start
    edit(course / NOTEBOOKS / "00-welcome.ipynb", '{"cells": ["00-welcome v3"]}\n')
    sync(course)  # a later version replaces the side-by-side one, never the learner's
    assert mine.read_text() == '{"cells": ["my answers"]}\n'
    assert "v3" in (course / MINE / "00-welcome (new version).ipynb").read_text()


@pytest.mark.parametrize("damage", [None, "{not json", '["a list"]', '{"index.ipynb": 3}'])
def test_without_a_readable_record_nothing_of_the_learners_is_overwritten(course, damage):
    sync(course)
    mine = edit(course / MINE / "00-welcome.ipynb", '{"cells": ["my answers"]}\n')
    record = course / MINE / copies.RECORD
    record.unlink() if damage is None else record.write_text(damage)
    edit(course / NOTEBOOKS / "00-welcome.ipynb", '{"cells": ["00-welcome v2"]}\n')
    said = sync(course)
    assert mine.read_text() == '{"cells": ["my answers"]}\n'
    assert (course / MINE / "00-welcome (new version).ipynb").exists()
    assert (damage is not None) == any("could not be read" in line for line in said)


def test_work_done_in_the_course_folder_moves_over_and_stays_the_learners(course):
    """Does a learner who worked in notebooks/ (before copies existed) keep their work through updates?"""
    edit(course / NOTEBOOKS / "00-welcome.ipynb", '{"cells": ["my answers, in place"]}\n')
    (course / NOTEBOOKS / WORK / "00-welcome").mkdir(parents=True)
    edit(course / NOTEBOOKS / WORK / ".progress.json", '{"version": 2}\n')
    said = copies.adopt(course / NOTEBOOKS, course / MINE) + sync(course)
    assert len(said) == 1 and "moved from notebooks/ to my-notebooks/" in said[0], said
    assert (course / MINE / WORK / ".progress.json").read_text() == '{"version": 2}\n'
    assert not (course / NOTEBOOKS / WORK).exists()
    # `git checkout notebooks/` then a pull: the course's versions come back, the learner's stay
    edit(course / NOTEBOOKS / "00-welcome.ipynb", '{"cells": ["00-welcome v2"]}\n')
    edit(course / NOTEBOOKS / "index.ipynb", '{"cells": ["index v2"]}\n')
    sync(course)
    assert (course / MINE / "00-welcome.ipynb").read_text() == '{"cells": ["my answers, in place"]}\n'
    assert (course / MINE / "index (new version).ipynb").exists()  # adopted: theirs, even if never opened
    assert copies.adopt(course / NOTEBOOKS, course / MINE) == []  # once only


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_pull_never_meets_the_learners_work(course, tmp_path):
    """With the course's .gitignore, do the copies, projects and progress stay out of git's way?"""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    shutil.copy(copies.ROOT / ".gitignore", course / ".gitignore")
    subprocess.run([*git, "init", "-q"], cwd=course, check=True)
    subprocess.run([*git, "add", "-A"], cwd=course, check=True)
    subprocess.run([*git, "commit", "-qm", "course v1"], cwd=course, check=True)
    copies.main(course)
    edit(course / MINE / "00-welcome.ipynb", '{"cells": ["my answers"]}\n')
    (course / MINE / WORK / "00-welcome").mkdir(parents=True)
    edit(course / MINE / WORK / ".progress.json", "{}\n")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=course, capture_output=True, text=True, check=True)
    assert status.stdout == ""
