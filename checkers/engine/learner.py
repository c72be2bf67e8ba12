"""The untrusted side of a check: the only process that imports the learner's code.

It holds a private copy of the learner's project and answers the judge's requests (import
a module, read an attribute, call something, send a request through the test client, run
one of the course's probes) with plain data. It knows nothing of the check's steps,
expected values or verdict, so nothing the learner's code does here can forge a result: at
worst it answers wrongly, or not at all.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import posix
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from ..paths import SCRUBBED_ENV
from . import testrun, wire
from .faults import CheckTimeout, LearnerExit, describe, learner_frame, message, one_line, safe_repr
from .workspace import IGNORED

_real_exit = os._exit  # kept before the guard replaces it: this process must still end itself
PROBES: dict[str, object] = {}  # "module:qualname" -> course code that runs beside the learner's


def probe(function):
    """Mark a course function that runs in the learner's process (it may touch learner objects).

    The judge calls it with `t.probe(function, ...)`; handles arrive as the real objects,
    and what it returns goes back as plain data (or handles).
    """
    PROBES[f"{function.__module__}:{function.__qualname__}"] = function
    return function


class Learner:
    """The request loop of the learner's process."""

    def __init__(self, project: Path, channel: tuple[int, int]):
        self.project = project
        self.reader, self.writer = channel
        self.objects: dict[int, object] = {}
        self.ids: dict[int, int] = {}  # id(object) -> handle, so an object keeps one handle
        self.budget = 0.0  # seconds the request being answered may take

    def serve(self) -> None:
        while True:
            try:
                request = wire.receive(self.reader)
            except wire.WireError:
                return  # the judge is done (or gone)
            answer = self.answer(request)
            answer["id"] = request.get("id")
            try:
                wire.send(self.writer, answer)
            except (OSError, ValueError, TypeError) as error:  # an answer JSON cannot hold
                wire.send(self.writer, {"id": request.get("id"), "internal": f"unsendable answer: {error}"})

    def answer(self, request: dict) -> dict:
        op = request.get("op")
        budget = self.budget = float(request.get("budget", 3))
        started = time.monotonic()
        _arm(budget)
        try:
            value = getattr(self, f"op_{op}")(*self.decode(request.get("args", ["L", []])))
            _arm(0)
            return {"ok": self.encode(value), "spent": time.monotonic() - started}
        except CheckTimeout as stop:
            _arm(0)
            return {"timeout": learner_frame(stop, self.project), "spent": budget}
        except BaseException as error:  # noqa: BLE001 — whatever the learner's code raised
            _arm(0)
            ours = op in ("probe", "pytest") and not isinstance(error, LearnerExit)
            if ours and learner_frame(error, self.project) is None:
                # raised by the course's own probe (or test runner), not by the learner's code
                return {"internal": one_line(error), "spent": time.monotonic() - started}
            return {"raised": self.describe(error), "spent": time.monotonic() - started}

    # plain data both ways ---------------------------------------------------------------

    def encode(self, value):
        return wire.encode(value, self.handle)

    def decode(self, data):
        return wire.decode(data, lambda ident, info: self.objects[ident])

    def handle(self, value) -> list:
        key = id(value)
        if key not in self.ids:
            self.ids[key] = len(self.objects) + 1
            self.objects[self.ids[key]] = value
        return [self.ids[key], facts(value)]

    def describe(self, error: BaseException) -> dict:
        kind = type(error)
        return {
            "type": kind.__name__,
            "mro": [_qualified(k) for k in kind.__mro__],
            "message": message(error),
            "text": describe(error).replace(str(self.project) + os.sep, ""),
            "where": learner_frame(error, self.project),
            "handle": self.handle(error),
        }

    # the requests -------------------------------------------------------------------------

    def op_import(self, name: str):
        return importlib.import_module(name)

    def op_load(self, name: str, path: str):
        """Import one file as module `name`, without importing its package first."""
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, self.project / path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # as an import would: dataclasses and pickling need it
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        return sys.modules[name]

    def op_getattr(self, obj, name: str, *default):
        return getattr(obj, name, *default)

    def op_has(self, obj, name: str) -> bool:
        return hasattr(obj, name)

    def op_call(self, function, args, kwargs):
        return function(*args, **kwargs)

    def op_getitem(self, obj, key):
        return obj[key]

    def op_repr(self, obj) -> str:
        return safe_repr(obj)

    def op_isinstance(self, obj, cls) -> bool:
        return isinstance(obj, cls)

    def op_issubclass(self, cls, base) -> bool:
        return isinstance(cls, type) and issubclass(cls, base)

    def op_probe(self, name: str, args, kwargs):
        module = name.partition(":")[0]
        if name not in PROBES and module.startswith("checkers."):
            importlib.import_module(module)
        return PROBES[name](*args, **kwargs)

    def op_test_functions(self, text: str, path: str) -> list[str]:
        return testrun.test_functions(text, str(self.project / path))

    def op_pytest(self, files: dict, path: str) -> dict:
        """Run pytest on `path` in a new project of `files`, in a process of its own (see `testrun`)."""
        return testrun.run(files, path, self.project.parent, self.budget)

    def op_client(self, app):
        return app.test_client()

    def op_request(self, client, method: str, url: str, kwargs: dict) -> dict:
        response = client.open(url, method=method, **kwargs)
        request = response.request
        return {
            "status": response.status_code,
            "headers": [[k, v] for k, v in response.headers.items()],
            "data": response.get_data(),
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
        }


def facts(value) -> dict:
    """What the judge may know about an object without holding it."""
    kind = type(value)
    info = {"type": _qualified(kind), "mro": [_qualified(k) for k in kind.__mro__]}
    if isinstance(value, type):
        info["class"] = [_qualified(k) for k in value.__mro__]
    name = getattr(value, "__name__", None) if isinstance(value, type) or callable(value) or kind.__name__ == "module" else None
    if type(name) is str:
        info["name"] = name
    info["callable"] = callable(value)
    return info


def _qualified(kind) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


# --- preparing the process -----------------------------------------------------------------


def prepare(project: Path, scratch: Path, keep: tuple[int, ...]) -> Path:
    """Make this (throwaway) process the learner's: a copy of the project, guards and limits.

    Every inherited descriptor except the channel (`keep`) is closed, so the learner's code
    cannot reach the server's or the judge's pipes.
    """
    _close_all_but(keep)
    for name in [n for n in os.environ if n.startswith(SCRUBBED_ENV)]:
        del os.environ[name]
    _guard_exits()
    _limit_memory()
    sys.dont_write_bytecode = True
    workdir = scratch / "project"
    if project.is_dir():
        shutil.copytree(project, workdir, ignore=IGNORED)
    else:
        workdir.mkdir()
    os.chdir(workdir)
    os.environ["TMPDIR"] = str(scratch)  # the learner's temporary files are cleaned up too
    tempfile.tempdir = None
    sys.path.insert(0, str(workdir))
    importlib.invalidate_caches()
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _time_up)
    return workdir


def _close_all_but(keep: tuple[int, ...]) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd not in keep:
            os.dup2(devnull, fd)
    top = max(keep + (devnull, 2)) + 1
    for fd in range(3, top):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    try:
        os.closerange(top, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 4096)
    except (OSError, ValueError):
        pass


def _arm(seconds: float) -> None:
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001) if seconds else 0)


def _time_up(signum, frame):
    raise CheckTimeout()


def _guard_exits() -> None:
    """Turn the learner's attempts to end the process into exceptions with a line number."""

    def learner_exit(*args):
        raise LearnerExit(f"os._exit({', '.join(map(repr, args))})")

    def learner_abort():
        raise LearnerExit("os.abort()")

    os._exit = posix._exit = learner_exit
    os.abort = posix.abort = learner_abort


def _limit_memory(extra: int = 1 << 30) -> None:
    """Cap the process's address space at what it holds now plus `extra` bytes."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        pass  # no /proc or no resource module: the hard timeout still applies


def run(project: Path, scratch: Path, channel: tuple[int, int]) -> None:
    """Become the learner's process and answer until the judge closes the channel."""
    Learner(prepare(project, scratch, channel), channel).serve()
    _real_exit(0)


def main() -> None:
    """Spawn mode (no fork): the channel is this process's stdin and stdout."""
    reader, writer = os.dup(0), os.dup(1)
    hello = wire.receive(reader)
    run(Path(hello["project"]), Path(hello["scratch"]), (reader, writer))


if __name__ == "__main__":
    # run as the package's module, not as __main__: `@probe` registers into that module's PROBES
    importlib.import_module("checkers.engine.learner").main()
