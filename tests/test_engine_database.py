"""Does every check get a database of its own, and lose it when the check ends?"""
import random
import sys
import types

import pytest
import sqlalchemy as sa

from checkers.engine import databases, sandbox
from checkers.engine.judge import Checker
from checkers.engine.learner import probe
from checkers.notebook.api import Chapter
from checkers.engine.outcomes import Outcome, Result
from conftest import assert_outcome
from postgres_server import fresh_database, schemas



@probe
def _hold_a_lock(url: str) -> None:
    """Make a table and leave its transaction open (holding locks), as careless code would."""
    engine = sa.create_engine(url)
    connection = engine.connect()
    connection.execute(sa.text("CREATE TABLE seats (n integer)"))
    connection.execute(sa.text("INSERT INTO seats VALUES (1)"))  # not committed: the table stays locked
    _held.append(connection)


_held: list = []
FAILING = Chapter("checkers.chapters.ch99_failing", "A check that fails after making a database")
FAILING.name = "00-welcome"  # its project's files, for the not-attempted test
_fails = FAILING.exercise("Fails")


@_fails.step("makes a table in the learner's process, keeps a transaction open, then fails")
def _fail_after_locking(t, state):
    url = t.database_url()
    t.probe(_hold_a_lock, url)
    t.fail("nothing", url)


def _checker(tmp_path) -> Checker:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    return Checker(None, project, tmp_path, random.Random(1))  # no learner process: databases only


def test_sqlite_in_the_scratch_folder_by_default(tmp_path, monkeypatch):
    """Without DATABASE_URL, is the database a new SQLite file beside (not inside) the project?"""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    t = _checker(tmp_path)
    url = t.database_url()
    path = sa.engine.make_url(url).database
    assert url.startswith("sqlite:///") and path.startswith(str(tmp_path) + "/") and path.endswith(".sqlite")
    assert not path.startswith(str(t.project))
    assert t.database_url() == url, "one check, one database: the same URL on every call"
    assert _checker(tmp_path).database_url() != url, "another exercise's check gets another database"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (n integer)"))
    engine.dispose()


def test_other_databases_are_not_used(tmp_path, monkeypatch):
    """Is a DATABASE_URL that is not PostgreSQL ignored (SQLite instead)?"""
    monkeypatch.setenv("DATABASE_URL", "mysql://someone@db.example.com/tickets")
    assert _checker(tmp_path).database_url().startswith("sqlite:///")


@pytest.fixture(scope="module")
def postgres():
    with fresh_database() as url:
        yield url


def test_postgres_schema_is_private_and_dropped(tmp_path, monkeypatch, postgres):
    """With DATABASE_URL on PostgreSQL, does a check work in a schema of its own, dropped at the end?"""
    monkeypatch.setenv("DATABASE_URL", postgres + "?options=-cstatement_timeout%3D10000 -csearch_path%3Dpublic")
    t = _checker(tmp_path)
    url = t.database_url()
    schema = sa.engine.make_url(url).query["application_name"]
    assert schema.startswith("check_") and schemas(postgres) == [schema]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        assert connection.execute(sa.text("SHOW search_path")).scalar() == schema
        assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "10s", "the URL's other options stay"
        connection.execute(sa.text("CREATE TABLE seats (n integer)"))
    held = engine.connect()
    held.execute(sa.text("INSERT INTO seats VALUES (1)"))  # an open transaction: cleaning up must not wait for it
    databases.clean_up()
    assert schemas(postgres) == []
    assert not databases._cleanups
    held.invalidate()  # the cleanup ended its session on the server; drop it without a rollback
    engine.dispose()


def test_a_failed_check_still_drops_its_schema(tmp_path, monkeypatch, postgres):
    """Is the schema dropped when the check fails, with its table still locked by the learner's code?"""
    monkeypatch.setenv("DATABASE_URL", postgres)
    project = tmp_path / "learner"
    (project / "tickethub").mkdir(parents=True)
    (project / "tickethub" / "warmup.py").write_text("# attempted\n")
    monkeypatch.setitem(sys.modules, FAILING.module, types.SimpleNamespace(chapter=FAILING))
    request = {"module": FAILING.module, "exercise": "ex1", "project": str(project), "seed": 1}
    result = Result.from_dict(sandbox.run_forked(request))  # forked from here: it knows the chapter
    assert_outcome(result, Outcome.FAIL, "search_path")
    assert schemas(postgres) == []
