"""Do the data chapters hold on a real PostgreSQL server, exactly as they do on SQLite?

A data chapter is one whose checker module declares `USES_DATABASE = True`. Every test of its
own test module that makes projects runs on SQLite and on PostgreSQL (see conftest.py). Here,
with DATABASE_URL pointing at a database made for this module (`tickethub_test_<hex>`, dropped
at the end): its checks pass on the reference solution and every check drops its schema
afterwards; and its solution notebook passes strict nbval, in a schema of its own.
Without a reachable server these tests skip, except in CI, where they fail (see postgres_server.py).
"""
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checkers.engine import server, workspace
from checkers.authoring.build import CHAPTER, ROOT
from checkers.engine.outcomes import Outcome
from conftest import SWEEP_POSTGRES, Project, assert_outcome
from postgres_server import fresh_database, schemas, with_schema

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def data_chapters() -> list[str]:
    """The chapters whose checker module says `USES_DATABASE = True`."""
    found = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        module = workspace.module_name(path.stem)
        if CHAPTER.match(path.name) and importlib.util.find_spec(module):
            if getattr(importlib.import_module(module), "USES_DATABASE", False):
                found.append(path.stem)
    return found


DATA_CHAPTERS = data_chapters()


@pytest.fixture(scope="module")
def database():
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def client(database):
    """A new check server that sees DATABASE_URL (the session's own server does not)."""
    started = server.Client(env={"DATABASE_URL": database})
    started.start()
    yield started
    started.stop()


def _project(chapter: str, root: Path, client, seed: int = 0) -> Project:
    workspace.write_files(root, workspace.files(chapter, "solution"))
    return Project(chapter, root, client, seed, SWEEP_POSTGRES)


@pytest.mark.parametrize("chapter", DATA_CHAPTERS)
def test_reference_passes_on_postgres(chapter, client, database, tmp_path):
    p = _project(chapter, tmp_path / chapter, client)
    for exercise in importlib.import_module(p.module).chapter.exercises:
        assert_outcome(p.check(exercise.key), Outcome.PASS)
    assert schemas(database) == [], "a check left its schema behind"


@pytest.mark.parametrize("chapter", DATA_CHAPTERS)
def test_solution_notebook_on_postgres(chapter, database, tmp_path):
    """Does the solution notebook reproduce its stored (SQLite) outputs exactly on PostgreSQL?"""
    shutil.copy(ROOT / "solutions" / f"{chapter}.ipynb", tmp_path)
    url = with_schema(database, "nb_" + chapter.replace("-", "_"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-cell-timeout=120",
         "--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider", "-q", f"{chapter}.ipynb"],
        cwd=tmp_path, env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert schemas(database) == [], "a check in the notebook left its schema behind"
