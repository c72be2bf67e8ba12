"""Fixtures for TicketHub's tests: chapter projects and a check server, as learners have them."""
from __future__ import annotations

import importlib
import os
import sys
import zlib
from pathlib import Path

import pytest

from checkers.engine import server, workspace
from checkers.engine.outcomes import Outcome, Result


# Seeds per asserted verdict (see `Project.check`): enough to catch a verdict that depends on the
# seed, cheap enough for CI. `TICKETHUB_SEEDS=200 python3 course.py test -k ch01` sweeps more on
# demand; data chapters also run every such test on PostgreSQL, over TICKETHUB_POSTGRES_SEEDS.
SWEEP = int(os.environ.get("TICKETHUB_SEEDS", "20"))
SWEEP_POSTGRES = int(os.environ.get("TICKETHUB_POSTGRES_SEEDS", "3"))


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="rewrite the build's golden files")


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


@pytest.fixture(scope="session")
def check_server():
    """One warm check server for the whole session, as a learner's kernel has."""
    client = server.Client()
    yield client
    client.stop()


@pytest.fixture(scope="session")
def postgres_check_server():
    """A check server whose checks run on a PostgreSQL database of this session's own."""
    from postgres_server import fresh_database

    # the URL goes to this server alone: set in os.environ, it would reach every server and
    # notebook started later in the session (and SQLite's tests would run on PostgreSQL)
    with fresh_database() as url:
        client = server.Client(env={"DATABASE_URL": url})
        client.start()
        yield client
        client.stop()


def uses_database(chapter: str) -> bool:
    """Does the chapter's checker module say `USES_DATABASE = True`?"""
    return getattr(importlib.import_module(workspace.module_name(chapter)), "USES_DATABASE", False)


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*names): the only databases a data chapter's test (or case) "
                            "holds on; say why beside it")


def pytest_generate_tests(metafunc):
    """A data chapter's tests that make projects run twice: on SQLite and on the machine's PostgreSQL."""
    chapter = getattr(metafunc.module, "CHAPTER", None)
    if "project" in metafunc.fixturenames and chapter and uses_database(chapter):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


def pytest_collection_modifyitems(config, items):
    """Leave out the runs on a database that a `backends(...)` mark (of the test or its case) excludes."""
    kept, left_out = [], []
    for item in items:
        mark = item.get_closest_marker("backends")
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("backend")
        (left_out if mark and backend and backend not in mark.args else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture
def backend(request) -> str:
    """The database the checks use: "sqlite" (embedded, the default) or "postgresql"."""
    return getattr(request, "param", "sqlite")


class Project:
    """A chapter's project folder in a temporary directory, at a chosen version."""

    def __init__(self, chapter: str, root: Path, client: server.Client, seed: int, seeds: int = SWEEP):
        self.chapter, self.root, self.client, self.seed, self.seeds = chapter, root, client, seed, seeds
        self.module = workspace.module_name(chapter)

    def _seeds(self, exercise: str) -> int:
        """The sweep's size for `exercise`: one seed when no seed can change its verdict (see `seed_free`)."""
        return 1 if importlib.import_module(self.module).chapter.get(exercise).seed_free else self.seeds

    def read(self, path: str) -> str:
        return (self.root / path).read_text(encoding="utf-8")

    def write(self, path: str, text: str) -> Project:
        workspace.write_files(self.root, {path: text})
        return self

    def edit(self, path: str, old: str, new: str) -> Project:
        """Replace `old` (which must be there) with `new` in one of the project's files."""
        text = self.read(path)
        assert old in text, f"{old!r} is not in {path}: the test is out of date"
        return self.write(path, text.replace(old, new))

    def check(self, exercise: str, seed: int | None = None) -> Result:
        """Run a check with `seed`, or with the test's own seed (see `test_seed`).

        Without `seed`, the result stands for a sweep: `assert_outcome` and `assert_rejected`
        run the sweep's other seeds on the same files, so every asserted verdict holds on all.
        """
        result = self.client.run(self.module, exercise, self.root, seed=self.seed if seed is None else seed)
        assert result.outcome is not Outcome.INTERNAL, result.text()  # a fault of the check itself
        if seed is None:
            files = self._files()
            result.rest_of_sweep = lambda: self._rest_of_sweep(exercise, files)
        return result

    def sweep(self, exercise: str) -> list[Result]:
        """Run a check over the sweep's seeds: a verdict must not depend on the data a seed draws."""
        return [self.check(exercise, seed=self.seed + i) for i in range(self._seeds(exercise))]

    def _files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts}

    def _rest_of_sweep(self, exercise: str, files: dict[str, bytes]) -> list[Result]:
        assert self._files() == files, "the project changed after check(): assert its result first"
        return [self.check(exercise, seed=self.seed + i) for i in range(1, self._seeds(exercise))]


@pytest.fixture
def test_seed(request) -> int:
    """A seed of this test's own: the same every run, so a failure replays.

    `TICKETHUB_TEST_SEED=N` shifts every test's seed, which sweeps the checks over other data.
    """
    base = int(os.environ.get("TICKETHUB_TEST_SEED", "0"))
    return zlib.crc32(f"{base}:{request.node.nodeid}".encode())


@pytest.fixture
def project(request, tmp_path, test_seed, backend):
    """Make a chapter's project: `project("01-project-structure", "solution")`.

    The version is `start` (the checkpoint), `starter` (every cell of the learner notebook
    run) or `solution` (every cell of the reference run). Its checks run on `backend`.
    """
    postgres = backend == "postgresql"
    client = request.getfixturevalue("postgres_check_server" if postgres else "check_server")

    def make(chapter: str, version: str = "solution") -> Project:
        root = tmp_path / chapter
        workspace.write_files(root, workspace.files(chapter, version))
        return Project(chapter, root, client, test_seed, SWEEP_POSTGRES if postgres else SWEEP)

    return make


@pytest.fixture
def learner_package(tmp_path, monkeypatch):
    """Import a chapter's `tickethub` in this process, as `setup()` leaves it or fully solved.

    `learner_package("03-database")` gives the project right after the setup cell (given files,
    starters); `learner_package("03-database", "solution")` the reference. The package is
    forgotten again afterwards, and DATABASE_URL is unset so SQLite is used.
    """
    def load(chapter: str, version: str = "setup"):
        root = tmp_path / f"package-{chapter}-{version}"
        if version == "setup":
            workspace.materialise(chapter, root)
        else:
            workspace.write_files(root, workspace.files(chapter, version))
        monkeypatch.chdir(root)
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.delenv("DATABASE_URL", raising=False)
        forget()
        return importlib.import_module("tickethub")

    def forget():
        for name in [m for m in sys.modules if m.split(".")[0] == "tickethub"]:
            del sys.modules[name]

    yield load
    forget()


@pytest.fixture
def migrated(tmp_path, learner_package):
    """`migrated("07-authentication")`: the chapter's finished app on a new SQLite file, brought up through every
    migration and compared with the models (`flask db check` exits if autogenerate would find anything to do).
    Returns its engine, inside an app context that lasts as long as the test; `downgrade` it from there."""
    from flask_migrate import check, upgrade

    contexts = []

    def make(chapter: str):
        app = learner_package(chapter, "solution").create_app(
            {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'chain.sqlite'}"})
        contexts.append(app.app_context())
        contexts[-1].push()
        upgrade(directory="migrations")
        check(directory="migrations")
        return app.extensions["sqlalchemy"].engine

    yield make
    for context in reversed(contexts):
        context.pop()


def assert_rejected(result: Result | list[Result], expected: str) -> None:
    """Assert that a wrong answer fails (or errors) with `expected` in its feedback, and nothing
    of the checker's own: no traceback, temporary path, checker file or memory address.

    Given a `Project.sweep`, or a `Project.check()` (which stands for one), every seed must reject
    it with that message.
    """
    for one in _swept(result):
        text = one.text()
        assert one.outcome in (Outcome.FAIL, Outcome.ERROR), text
        assert expected in text, text
        for internal in ("Traceback", "tickethub-check-", "checkers/", " 0x"):
            assert internal not in text, text


def assert_outcome(result: Result | list[Result], outcome: Outcome, *fragments: str) -> None:
    """Assert a result's outcome (every one of a sweep's), and that its text mentions every fragment."""
    for one in _swept(result):
        text = one.text()
        assert one.outcome is outcome, text
        for fragment in fragments:
            assert fragment in text, f"{fragment!r} not in:\n{text}"


def _swept(result: Result | list[Result]) -> list[Result]:
    """Every result a verdict is asserted on: a sweep's, or a `Project.check()`'s and its sweep's."""
    if isinstance(result, list):
        return result
    rest = getattr(result, "rest_of_sweep", None)
    return [result, *(rest() if rest else [])]
