"""The judge: runs an exercise's steps and decides the verdict, away from the learner's code.

This process never imports the learner's code. Every touch of it goes through `t` (a
`Checker`) to the learner's process and comes back as plain data: values by value, other
objects as `Remote` handles, exceptions as `LearnerError` (type, message and the learner's
own file and line). The expected values, the random data and the verdict stay here.

Whose fault: a `StepFailed` is a FAIL; a `LearnerError` that a step did not expect is an
ERROR; a timeout in the learner's code is a TIMEOUT; any other exception raised here is a
fault of the course's own check (INTERNAL), never blamed on the learner.
"""
from __future__ import annotations

import json
import os
import random
import select
import traceback
from pathlib import Path

from werkzeug.datastructures import Headers

from . import databases, testrun, wire, workspace
from .limits import HARD_MARGIN, SOFT_TIMEOUT
from .outcomes import Outcome, Result, Step

MISSING = object()


class StepFailed(Exception):
    """A step saw something other than what it expected."""

    def __init__(self, expected: str, seen: str, hint: str | None = None):
        super().__init__(seen)
        self.expected, self.seen, self.hint = expected, seen, hint


class LearnerError(Exception):
    """The learner's code raised; what it raised, as plain data (and a handle to it)."""

    def __init__(self, info: dict, remote: Remote | None):
        super().__init__(info.get("text", ""))
        self.type_name: str = info.get("type", "Exception")
        self.mro: list[str] = list(info.get("mro", []))
        self.message: str = info.get("message", "")
        self.text: str = info.get("text", "")
        self.where: str | None = info.get("where")
        self.remote = remote

    def isa(self, kind) -> bool:
        """Is it an instance of `kind`: a class of the learner's (`Remote`), a library class, or a name?"""
        if isinstance(kind, str):
            return any(q.rsplit(".", 1)[-1] == kind for q in self.mro)
        if isinstance(kind, Remote):
            return self.remote is not None and self.remote._t._ask("isinstance", self.remote, kind) is True
        return _qualified(kind) in self.mro

    def seen(self) -> str:
        return f"it raised `{self.type_name}" + (f": {_cut(self.message, 80)}`" if self.message else "`")


class LearnerTimeout(BaseException):
    """The learner's code used up its time (`where` is its line, when known)."""

    def __init__(self, where: str | None, hard: bool = False):
        super().__init__(where)
        self.where, self.hard = where, hard


class LearnerGone(BaseException):
    """The learner's process ended (or answered what no honest process would)."""


class Remote:
    """An object that lives in the learner's process. Attribute access and calls go there."""

    __slots__ = ("_t", "_id", "_info", "_label")

    def __init__(self, t: Checker, ident: int, info: dict, label: str):
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_info", info)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._t._ask("getattr", self, name, label=name)

    def __call__(self, *args, **kwargs):
        return self._t._ask("call", self, list(args), kwargs, label=self._label)

    def __getitem__(self, key):
        return self._t._ask("getitem", self, key, label=f"{self._label}[{key!r}]")

    def __repr__(self) -> str:
        text = self._t._ask("repr", self)
        return text if type(text) is str else f"<{self.type_name}>"  # a lying process may answer anything

    def __eq__(self, other) -> bool:
        return isinstance(other, Remote) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    @property
    def type_name(self) -> str:
        return self._info.get("type", "").rsplit(".", 1)[-1]

    @property
    def is_class(self) -> bool:
        return "class" in self._info

    @property
    def is_callable(self) -> bool:
        return bool(self._info.get("callable"))


class Reply:
    """A test-client response, as data: what a step needs of `flask.Response`."""

    def __init__(self, data: dict):
        self.status_code: int = data["status"]
        self.headers = Headers([tuple(pair) for pair in data["headers"]])
        self.data: bytes = data["data"]
        self.method, self.path, self.query = data["method"], data["path"], data["query"]

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def mimetype(self) -> str:
        return (self.content_type or "").split(";")[0].strip().lower()

    @property
    def is_json(self) -> bool:
        return self.mimetype == "application/json" or (
            self.mimetype.startswith("application/") and self.mimetype.endswith("+json")
        )

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def get_data(self, as_text: bool = False):
        return self.text if as_text else self.data

    def get_json(self, silent: bool = False):
        if not self.is_json:
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def request(self) -> str:
        """The request as the feedback shows it: `GET /api/quote?price=1`."""
        return f"`{self.method} {self.path}{'?' + self.query if self.query else ''}`"

    def excerpt(self) -> str:
        body = " ".join(self.text.strip().split())
        return f": `{_cut(body, 100)}`" if body else ""


class Client:
    """A test client of an app in the learner's process; requests and answers cross as data."""

    def __init__(self, t: Checker, app: Remote):
        self.t, self.remote = t, t._ask("client", app)

    def open(self, url: str, method: str = "GET", **kwargs) -> Reply:
        return Reply(self.t._ask("request", self.remote, method, url, kwargs,
                                 label=f"{method} {url}"))

    def get(self, url, **kwargs):
        return self.open(url, "GET", **kwargs)

    def post(self, url, **kwargs):
        return self.open(url, "POST", **kwargs)

    def put(self, url, **kwargs):
        return self.open(url, "PUT", **kwargs)

    def patch(self, url, **kwargs):
        return self.open(url, "PATCH", **kwargs)

    def delete(self, url, **kwargs):
        return self.open(url, "DELETE", **kwargs)


class Call:
    """What one call into the learner's code did: returned `value`, or raised `error`."""

    def __init__(self, describe, value=MISSING, error: LearnerError | None = None):
        self._describe, self.value, self.error = describe, value, error

    @property
    def text(self) -> str:
        """The call as the feedback shows it, "`create_event({...})`" (built only when shown)."""
        return self._describe() if callable(self._describe) else self._describe

    @property
    def returned(self) -> bool:
        return self.error is None

    def seen(self) -> str:
        return self.error.seen() if self.error else f"it returned `{show(self.value)}`"


class Checker:
    """What a step receives as `t`: the way to the learner's code, randomness, and verdicts."""

    def __init__(self, channel: Channel, project: Path, scratch: Path, rng: random.Random):
        self.channel, self.project, self.scratch, self.rng = channel, project, scratch, rng
        self.budget = SOFT_TIMEOUT
        self.pristine = True  # no request so far could have run the learner's code in their process
        self._database_url: str | None = None

    # reaching the learner's code ---------------------------------------------------------

    def _ask(self, op: str, *args, label: str = "", limit: float | None = None):
        if op not in UNTOUCHED:
            self.pristine = False
        budget = self.budget if limit is None else min(self.budget, limit)
        answer = self.channel.ask(op, wire.encode(list(args), _handle_of), budget)
        self.budget -= answer.pop("spent")
        if "timeout" in answer:
            raise LearnerTimeout(answer["timeout"])
        if "raised" in answer:
            info = answer["raised"]
            remote = self._remote(info["handle"][0], info["handle"][1], info.get("type", ""))
            raise LearnerError(info, remote)
        if "internal" in answer:
            raise InternalFault(answer["internal"])
        return wire.decode(answer["ok"], lambda ident, info: self._remote(ident, info, label))

    def _remote(self, ident, info, label) -> Remote:
        if not isinstance(ident, int) or not isinstance(info, dict):
            raise LearnerGone("an answer that is not a handle")
        return Remote(self, ident, info, info.get("name") or label)

    def module(self, name: str) -> Remote:
        """Import one of the learner's modules (its errors are the learner's ERROR)."""
        return self._ask("import", name, label=name)

    def load(self, name: str, path: str) -> Remote:
        """Import one of the learner's files as module `name`, without its package's `__init__`."""
        return self._ask("load", name, path, label=name)

    def get(self, obj: Remote, name: str, default=None):
        """`getattr(obj, name, default)` in the learner's process."""
        return self._ask("getattr", obj, name, default, label=name)

    def has(self, obj: Remote, name: str) -> bool:
        return self._ask("has", obj, name) is True

    def isa(self, value, kind) -> bool:
        """Is `value` an instance of `kind` (a library class, or a learner class as a `Remote`)?"""
        if not isinstance(value, Remote):
            return isinstance(kind, type) and type(value) is kind
        if isinstance(kind, Remote):
            return self._ask("isinstance", value, kind) is True
        return _qualified(kind) in value._info.get("mro", [])

    def inherits(self, cls, base) -> bool:
        """Is `cls` (a learner's class, as a `Remote`) a subclass of `base` (a library class or a `Remote`)?"""
        if not isinstance(cls, Remote) or not cls.is_class:
            return False
        if isinstance(base, Remote):
            return self._ask("issubclass", cls, base) is True
        return _qualified(base) in cls._info["class"]

    def attempt(self, function: Remote, *args, **kwargs) -> Call:
        """Call the learner's `function`; return a `Call` that says what happened."""
        def text():
            return f"`{function._label}({_arguments(args, kwargs)})`"

        try:
            return Call(text, value=function(*args, **kwargs))
        except LearnerError as error:
            return Call(text, error=error)

    def probe(self, function, *args, **kwargs):
        """Run one of the course's `@probe` functions in the learner's process."""
        return self._ask("probe", f"{function.__module__}:{function.__qualname__}", list(args), kwargs,
                         label=function.__name__)

    def client(self, app: Remote) -> Client:
        return Client(self, app)

    def test_functions(self, text: str, path: str) -> list[str]:
        """The test functions of a learner's test module `text` (written at `path`), found without running it.

        A syntax error is the learner's ERROR, with their line.
        """
        names = self._ask("test_functions", text, path, label=path)
        return [n for n in names if type(n) is str] if isinstance(names, list) else []

    def pytest(self, files: dict[str, str], path: str) -> dict:
        """Run pytest on `path` in a new project made of `files`, on the learner's side; what each test did.

        Each run has `SOFT_TIMEOUT` seconds of the exercise's budget (and the time to start pytest). Runs are made only in a learner's
        process that has run none of the learner's code yet (see `UNTOUCHED`): what it answers about a
        run then comes from the course's code alone, and the run itself is a process of its own.
        """
        if not self.pristine:
            raise RuntimeError("pytest runs need a learner's process that has not run the learner's code: "
                               "declare `tests_catch` on an exercise with no `requires`, before any other step")
        report = self._ask("pytest", files, path, label="pytest", limit=SOFT_TIMEOUT + testrun.start_time())
        if not isinstance(report, dict):
            raise LearnerGone("a test run answered something other than a report")
        return report

    # verdicts -----------------------------------------------------------------------------

    def fail(self, expected: str, seen: str, hint: str | None = None):
        raise StepFailed(expected, seen, hint)

    def require(self, ok, expected, seen, hint=None) -> None:
        """Fail the step unless `ok`; each text may be a callable, so it is only built when needed."""
        if not ok:
            self.fail(*(text() if callable(text) else text for text in (expected, seen, hint)))

    def returns(self, call: Call, kind: type | tuple, what: str, hint: str | None = None):
        """Require that `call` returned a value of exactly `kind`; give the value."""
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not (call.returned and type(call.value) in kinds):
            self.fail(f"{call.text} returns {what}", call.seen(), hint)
        return call.value

    def raises(self, call: Call, kind, what: str | None = None, hint: str | None = None) -> LearnerError:
        """Require that `call` raised `kind` (a name, a library class or a learner `Remote` class)."""
        if not (call.error is not None and call.error.isa(kind)):
            name = kind if isinstance(kind, str) else kind._label if isinstance(kind, Remote) else kind.__name__
            self.fail(f"{call.text} raises `{name}`" + (f" ({what})" if what else ""), call.seen(), hint)
        return call.error

    def json(self, reply: Reply, status: int, what: str, hint: str | None = None):
        """Return a reply's JSON body after checking its status and content type."""
        self.require(reply.status_code == status, f"{reply.request} answers {status}, with {what}",
                     lambda: f"{reply.request} answered {reply.status_code}{reply.excerpt()}", hint)
        self.require(reply.is_json, f"{reply.request} answers with JSON (`Content-Type: application/json`)",
                     lambda: f"`Content-Type: {reply.content_type}`{reply.excerpt()}",
                     "Did you return a `dict` or `list` (or use `jsonify`) rather than a string?")
        try:
            return reply.get_json()
        except ValueError:
            self.fail(f"{reply.request} answers valid JSON", f"the body is not JSON{reply.excerpt()}",
                      "Does the view return a `dict` or `list` that holds only JSON values (no `NaN`)?")

    # data ---------------------------------------------------------------------------------

    def word(self, prefix: str = "") -> str:
        """A random word, so that hard-coded answers fail."""
        letters = "".join(self.rng.choice("bcdfghjklmnprstvz") + self.rng.choice("aeiou") for _ in range(3))
        return prefix + letters

    def database_url(self) -> str:
        """A URL for a fresh, empty database private to this check (the same on every call)."""
        if self._database_url is None:
            self._database_url = databases.fresh_database(self.scratch)
        return self._database_url


# requests that run none of the learner's code: after only these, their process is as the course made it
UNTOUCHED = frozenset({"test_functions", "pytest"})


class InternalFault(Exception):
    """The course's own probe failed without the learner's code in its traceback."""


def _handle_of(value):
    if isinstance(value, Remote):
        return [value._id]
    raise TypeError(f"a {type(value).__name__} cannot be sent to the learner's process")


def _qualified(kind) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _arguments(args, kwargs) -> str:
    parts = [show(a, 200) for a in args] + [f"{k}={show(v, 200)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show(value, limit: int = 120) -> str:
    """Describe a value for feedback: plain data as Python writes it, handles by their repr."""
    if isinstance(value, Remote):
        try:
            text = repr(value)
        except (LearnerError, LearnerTimeout):
            text = f"<{value.type_name}>"
    else:
        text = repr(value)
    return _cut(text, limit)


def strictly_equal(a, b) -> bool:
    """Equal, and of the same exact types all the way down (so `True` is not `1`)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    return a == b


# --- the channel to the learner's process ---------------------------------------------------


class Channel:
    """Requests to the learner's process, each answered under the request's own one-time id."""

    def __init__(self, reader: int, writer: int, status=None):
        self.reader, self.writer, self.status = reader, writer, status
        self.dead = False

    def ask(self, op: str, args, budget: float) -> dict:
        if self.dead:
            raise LearnerGone("the learner's process has already ended")
        ident = int.from_bytes(os.urandom(6), "big")
        try:
            wire.send(self.writer, {"id": ident, "op": op, "args": args, "budget": max(budget, 0.05)})
            if not select.select([self.reader], [], [], max(budget, 0.05) + HARD_MARGIN)[0]:
                self.dead = True
                raise LearnerTimeout(None, hard=True)
            answer = wire.receive(self.reader)
        except (OSError, wire.WireError):
            self.dead = True
            raise LearnerGone(self.status() if self.status else "") from None
        if answer.get("id") != ident or not isinstance(answer.get("spent"), (int, float)):
            self.dead = True
            raise LearnerGone("an answer that does not belong to the request")
        answer["spent"] = max(0.0, min(float(answer["spent"]), budget + HARD_MARGIN))
        return answer


# --- running an exercise ----------------------------------------------------------------------


def run(chapter, key: str, t: Checker) -> Result:
    """Check exercise `key` (after the exercises it requires) with the learner's process behind `t`."""
    return _run(chapter, chapter.get(key), t, {})


def _run(chapter, exercise, t: Checker, done: dict) -> Result:
    if exercise.key in done:
        return done[exercise.key]
    key = exercise.key
    untouched = workspace.not_attempted(chapter.name, key, t.project)
    if untouched:
        done[key] = Result(key, exercise.title, Outcome.NOT_ATTEMPTED, message=untouched)
        return done[key]
    for required in exercise.requires:
        earlier = _run(chapter, required, t, done)
        if earlier.outcome is not Outcome.PASS:
            done[key] = Result(key, exercise.title, Outcome.FAIL, message=(
                f"Skipped: this exercise builds on exercise {required.number} ({required.title}), "
                f"which reports {earlier.outcome.value}. Fix exercise {required.number} first."))
            return done[key]
    t.budget = exercise.budget  # each exercise of a chain gets its own time
    done[key] = _run_steps(exercise, t)
    return done[key]


def _run_steps(exercise, t: Checker) -> Result:
    steps: list[Step] = []
    outcome, where, message, state = Outcome.PASS, None, None, None
    for step in exercise.steps:
        if outcome is not Outcome.PASS:
            steps.append(Step(step.name, "skipped"))
            continue
        try:
            state = step.function(t, state)
            steps.append(Step(step.name, "passed"))
        except StepFailed as failure:
            steps.append(Step(step.name, "failed", failure.expected, failure.seen, failure.hint))
            outcome = Outcome.FAIL
        except LearnerTimeout as stop:
            outcome, where = Outcome.TIMEOUT, stop.where
            if stop.hard:
                message = (f"The check did not finish within {SOFT_TIMEOUT + HARD_MARGIN:g} seconds and was "
                           "stopped. Is there a loop that never ends, or code that waits for something that never comes?")
            else:
                message = (f"Your code was still running after {SOFT_TIMEOUT:g} seconds, so the check stopped it"
                           + (" here:" if where else "."))
            steps.append(Step(step.name, "timeout",
                              hint="Is there a loop that never ends, or a wait for something that never comes?"))
        except LearnerError as error:
            outcome, where = Outcome.ERROR, error.where
            message = error.text + (" here:" if where else ".")
            steps.append(Step(step.name, "error", hint=step.on_error(error) or common_hint(error)))
        except LearnerGone as gone:
            outcome = Outcome.ERROR
            message = (f"The check's process ended abruptly{f' ({gone})' if str(gone) else ''} while running "
                       "your code. Does your code end the process or crash the interpreter?")
            steps.append(Step(step.name, "error"))
        except Exception as fault:  # noqa: BLE001 — raised by the check itself: our fault, not the learner's
            outcome = Outcome.INTERNAL
            message = internal_message(fault)
            steps.append(Step(step.name, "error"))
    return Result(exercise.key, exercise.title, outcome, steps, message, where)


# what most often causes each exception in a learner's code, for an ERROR with no hint of its step's own
COMMON_CAUSES = {
    "SyntaxError": "Look at the line shown and the one before it: is a bracket, quote or colon missing?",
    "IndentationError": "Are the lines of one block indented alike (4 spaces), with no tabs mixed in?",
    "NameError": "Is the name spelt as where it is defined, and defined or imported in this file?",
    "ModuleNotFoundError": "Is the module's name spelt right, and is the import relative (`from . import x`) "
                           "inside the `tickethub` package?",
    "ImportError": "Does the module define the name you import from it, under that spelling? Two modules that "
                   "import each other at the top can also cause this.",
    "AttributeError": "Does the object have that attribute? Check the spelling, and whether a function returned "
                      "`None` where you expected an object.",
    "KeyError": "Is the key always there? `d.get(key)` answers `None` instead of raising.",
    "IntegrityError": "The database refused a row that breaks one of its rules, which the message names: a required "
                      "(`NOT NULL`) column left empty, a second row where a `UNIQUE` rule allows one, a `CHECK`, or a "
                      "foreign key to a row that does not exist. Which of your writes breaks it?",
    "TypeError": "Are the types and the number of arguments what the function expects? A `None` where a value "
                 "was expected often shows up here.",
    "ValueError": "Is a conversion (`int(...)`, `float(...)`) given text it cannot read?",
    "RecursionError": "Does a function call itself (or two call each other) with no way to stop?",
    "SystemExit": "Checks call your functions: return a value or raise an exception instead of ending the program.",
    "MemoryError": "Is a loop adding to a list (or a string) without end?",
}


def common_hint(error: LearnerError) -> str | None:
    """A question about the usual cause of the learner's exception, when there is a usual one."""
    return next((COMMON_CAUSES[name.rsplit(".", 1)[-1]] for name in error.mro
                 if name.rsplit(".", 1)[-1] in COMMON_CAUSES), None)


def internal_message(fault: BaseException) -> str:
    if isinstance(fault, InternalFault):  # raised in a probe: the learner's process says where
        what = str(fault)
    else:
        frame = traceback.extract_tb(fault.__traceback__)[-1:]
        place = f" at {Path(frame[0].filename).name}:{frame[0].lineno}" if frame else ""
        what = f"`{type(fault).__name__}: {_cut(str(fault), 160)}`{place}"
    return (f"This is a problem in this check, not in your code: {what}. Please report it as an issue of "
            "the course, with this message and its seed; your other exercises are not affected.")
