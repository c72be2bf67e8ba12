"""Running an exercise's steps against a learner's project (inside the check process).

Everything here runs in a throwaway process that holds a copy of the learner's project,
so the learner's code can raise, loop, exit or write files without harming anything.
"""
from __future__ import annotations

import importlib
import itertools
import linecache
import os
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from . import workspace
from .exercise import Chapter, Exercise
from .outcomes import Outcome, Result, Step

SOFT_TIMEOUT = float(os.environ.get("TICKETHUB_CHECK_TIMEOUT", "3"))
SCRUBBED_ENV = ("TICKETHUB_", "FLASK_")  # the kernel's settings must not leak into a check


class StepFailed(Exception):
    """A step saw something other than what it expected."""

    def __init__(self, expected: str, seen: str, hint: str | None = None):
        super().__init__(seen)
        self.expected, self.seen, self.hint = expected, seen, hint


class CheckTimeout(BaseException):
    """Raised inside the learner's code when the check's time is up."""


class LearnerExit(BaseException):
    """The learner's code tried to end the process."""


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
            self._database_url = fresh_database(self.project.parent)
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


# --- databases for checks ---------------------------------------------------------------

_cleanups: list = []  # run when the check ends (run_in_this_process), even after a failure
_sqlite_files = itertools.count(1)


def fresh_database(scratch: Path) -> str:
    """Return the URL of a new, empty database: a schema of DATABASE_URL's PostgreSQL, or SQLite."""
    server = os.environ.get("DATABASE_URL", "")
    if server.startswith(("postgresql", "postgres:")):
        return _postgres_schema(server)
    n = next(_sqlite_files)
    return f"sqlite:///{scratch / ('check.sqlite' if n == 1 else f'check-{n}.sqlite')}"


def _postgres_schema(server: str) -> str:
    """Create a schema `check_<hex>` and return a URL whose connections work in it."""
    import sqlalchemy as sa

    if server.startswith("postgres://"):
        server = "postgresql://" + server.removeprefix("postgres://")
    url = sa.engine.make_url(server)
    schema = f"check_{secrets.token_hex(6)}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    _cleanups.append(lambda: _drop_schema(url, schema))
    options = url.query.get("options")
    # keep the URL's other options, but not a search_path of its own
    options = re.sub(r"-c\s*search_path=\S+\s*", "", options).strip() + " " if isinstance(options, str) else ""
    # the schema's name also names the connections, so that cleaning up can find them
    private = url.update_query_dict({"options": f"{options.lstrip()}-csearch_path={schema}", "application_name": schema})
    return private.render_as_string(hide_password=False)


def _drop_schema(url, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            # the learner's connections may still hold locks (an open transaction): end them first
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"),
                {"name": schema},
            )
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


def speed_up(engine) -> None:
    """A check's SQLite file is thrown away: skip the disk flushes that make each commit slow."""
    if engine.dialect.name == "sqlite":
        import sqlalchemy as sa

        sa.event.listen(engine, "connect", _no_sync)


def _no_sync(dbapi_connection, record):
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def raised(call) -> Exception | None:
    """Run `call`; return the exception it raised, or None (the step decides what was right)."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 — the learner's exception is the step's evidence
        return error
    return None


def clean_up() -> None:
    """Run (and forget) the cleanups registered by this check; a cleanup's error is ignored."""
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception:  # noqa: BLE001 — a leftover schema is dropped by the tests' fixture
            pass


# --- running an exercise ---------------------------------------------------------------


def run(chapter: Chapter, key: str, workdir: Path, seed: int) -> Result:
    """Check exercise `key` on the project in `workdir` (a private copy)."""
    return _run(chapter, chapter.get(key), workdir, random.Random(seed), {})


def _run(chapter: Chapter, exercise: Exercise, workdir: Path, rng: random.Random, done: dict) -> Result:
    """Check one exercise after those it requires; `done` keeps results already known."""
    if exercise.key in done:
        return done[exercise.key]
    key = exercise.key
    untouched = _untouched(chapter, exercise, workdir)
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


def _run_steps(exercise: Exercise, checker: Checker) -> Result:
    steps: list[Step] = []
    outcome, where, message = Outcome.PASS, None, None
    for name, function in exercise.steps:
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
            message = _describe(error).replace(str(checker.project) + os.sep, "") + (" here:" if where else ".")
            steps.append(Step(name, "error"))
    return Result(exercise.key, exercise.title, outcome, steps, message, where)


def _untouched(chapter: Chapter, exercise: Exercise, workdir: Path) -> str | None:
    """Say why an exercise counts as not attempted, or return None if it was attempted."""
    cells = workspace.exercise_files(chapter.name, exercise.key)
    start = workspace.checkpoint(chapter.name)["start"]
    for cell in cells:
        target = workdir / cell["path"]
        if not target.exists():
            continue
        text = _normal(target.read_text(encoding="utf-8", errors="replace"))
        if text not in (_normal(cell["starter"]), _normal(start.get(cell["path"], ""))):
            return None
    paths = ", ".join(f"`{c['path']}`" for c in cells)
    return (
        f"{paths} still holds the starter code. Write your solution in the exercise's "
        "`%%writefile` cell, run that cell, then run this check again."
    )


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _describe(error: BaseException) -> str:
    if isinstance(error, LearnerExit):
        return f"Your code called `{error.args[0]}`, which would end the whole program"
    if isinstance(error, SystemExit):
        return "Your code called `sys.exit()` (or `exit()`), which would end the whole program"
    if isinstance(error, MemoryError):
        return "Your code ran out of memory (the check allows a few hundred megabytes)"
    if isinstance(error, SyntaxError):
        return f"Python could not read your code: `SyntaxError: {error.msg}`"
    text = str(error).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"Your code raised `{type(error).__name__}{detail}`"


def learner_frame(error: BaseException, project: Path) -> str | None:
    """Point at the innermost line of the learner's own code in the error's traceback."""
    root = str(project) + os.sep
    if isinstance(error, SyntaxError) and error.filename and error.filename.startswith(root):
        source = (error.text or "").rstrip("\n")
        caret = ""
        if source and error.offset:
            stripped = source.lstrip()
            caret = "\n    " + " " * max(0, error.offset - 1 - (len(source) - len(stripped))) + "^"
            source = stripped
        return f"{error.filename[len(root):]}, line {error.lineno}\n    {source}{caret}"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(root)]
    if not frames:
        return None
    frame = frames[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    return f"{frame.filename[len(root):]}, line {frame.lineno}, in {frame.name}\n    {line}"


# --- the check process ---------------------------------------------------------------------


def run_in_this_process(module: str, key: str, project: Path, seed: int, scratch: Path) -> dict:
    """Prepare this (throwaway) process, copy the project into `scratch`, and run the check.

    The caller owns `scratch` and removes it, even if this process is killed.
    """
    for name in [n for n in os.environ if n.startswith(SCRUBBED_ENV)]:
        del os.environ[name]
    _guard_exits()
    _limit_memory()
    sys.dont_write_bytecode = True
    workdir = scratch / "project"
    if project.is_dir():
        shutil.copytree(project, workdir, ignore=workspace.IGNORED)
    else:
        workdir.mkdir()
    os.chdir(workdir)
    os.environ["TMPDIR"] = str(scratch)  # the learner's temporary files are cleaned up too
    tempfile.tempdir = None
    sys.path.insert(0, str(workdir))
    importlib.invalidate_caches()
    chapter = importlib.import_module(module).chapter
    timer = hasattr(signal, "setitimer")  # not on Windows: the hard timeout still applies
    if timer:
        signal.signal(signal.SIGALRM, _time_up)
        signal.setitimer(signal.ITIMER_REAL, SOFT_TIMEOUT)
    try:
        return run(chapter, key, workdir, seed).to_dict()
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
        clean_up()


def _time_up(signum, frame):
    raise CheckTimeout()


def _guard_exits() -> None:
    """Turn the learner's attempts to end the process into exceptions with a line number."""

    def learner_exit(*args):
        raise LearnerExit(f"os._exit({', '.join(map(repr, args))})")

    def learner_abort():
        raise LearnerExit("os.abort()")

    os._exit, os.abort = learner_exit, learner_abort


def _limit_memory(extra: int = 1 << 30) -> None:
    """Cap the process's address space at what it holds now plus `extra` bytes."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        pass  # no /proc or no resource module: the hard timeout still applies
