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


# seeds per `Project.sweep`: enough to catch a verdict that depends on the seed, cheap enough for CI;
# `TICKETHUB_SEEDS=200 python3 course.py test -k ch01` sweeps more on demand
SWEEP = int(os.environ.get("TICKETHUB_SEEDS", "10"))


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


class Project:
    """A chapter's project folder in a temporary directory, at a chosen version."""

    def __init__(self, chapter: str, root: Path, client: server.Client, seed: int):
        self.chapter, self.root, self.client, self.seed = chapter, root, client, seed
        self.module = workspace.module_name(chapter)

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
        """Run a check with `seed`, or with the test's own seed (see `test_seed`)."""
        result = self.client.run(self.module, exercise, self.root, seed=self.seed if seed is None else seed)
        assert result.outcome is not Outcome.INTERNAL, result.text()  # a fault of the check itself
        return result

    def sweep(self, exercise: str) -> list[Result]:
        """Run a check over `SWEEP` seeds: a verdict must not depend on the data a seed draws."""
        return [self.check(exercise, seed=self.seed + i) for i in range(SWEEP)]


@pytest.fixture
def test_seed(request) -> int:
    """A seed of this test's own: the same every run, so a failure replays.

    `TICKETHUB_TEST_SEED=N` shifts every test's seed, which sweeps the checks over other data.
    """
    base = int(os.environ.get("TICKETHUB_TEST_SEED", "0"))
    return zlib.crc32(f"{base}:{request.node.nodeid}".encode())


@pytest.fixture
def project(tmp_path, check_server, test_seed):
    """Make a chapter's project: `project("01-project-structure", "solution")`.

    The version is `start` (the checkpoint), `starter` (every cell of the learner notebook
    run) or `solution` (every cell of the reference run).
    """

    def make(chapter: str, version: str = "solution") -> Project:
        root = tmp_path / chapter
        workspace.write_files(root, workspace.files(chapter, version))
        return Project(chapter, root, check_server, test_seed)

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


def assert_rejected(result: Result | list[Result], expected: str) -> None:
    """Assert that a wrong answer fails (or errors) with `expected` in its feedback, and nothing
    of the checker's own: no traceback, temporary path, checker file or memory address.

    Given a `Project.sweep`, every seed must reject it with that message.
    """
    for one in result if isinstance(result, list) else [result]:
        text = one.text()
        assert one.outcome in (Outcome.FAIL, Outcome.ERROR), text
        assert expected in text, text
        for internal in ("Traceback", "tickethub-check-", "checkers/", " 0x"):
            assert internal not in text, text


def assert_outcome(result: Result | list[Result], outcome: Outcome, *fragments: str) -> None:
    """Assert a result's outcome (every one of a sweep's), and that its text mentions every fragment."""
    for one in result if isinstance(result, list) else [result]:
        text = one.text()
        assert one.outcome is outcome, text
        for fragment in fragments:
            assert fragment in text, f"{fragment!r} not in:\n{text}"
