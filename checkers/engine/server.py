"""The check server: a warm process that forks fresh processes for every check.

The kernel starts one server (`python -m checkers.engine.server`) and talks to it over its
stdin and stdout, one JSON line per request, each answer carrying its request's id. The
server imports Flask at start and each chapter on its first check; every check then runs
in forked processes (`sandbox.py`) with their own copy of the learner's project, their own
process group and a hard time limit, so nothing in the kernel can change a result and
nothing a check does can hang or crash the kernel.
"""
from __future__ import annotations

import importlib
import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

from . import sandbox, workspace
from .outcomes import Outcome, Result

_loaded: set[str] = set()


def load(module: str) -> None:
    """Import a chapter and run its warm-ups, once, on its first check (before any fork).

    Its checkpoint is read now too, so a check never reads the course's files later, when a
    submission under grading might have changed them.
    """
    if module in _loaded:
        return
    _loaded.add(module)
    try:
        chapter = importlib.import_module(module).chapter
        workspace.preload(chapter.name)
        for warm_up in chapter.warm_ups:
            warm_up()
    except Exception as error:  # noqa: BLE001 — the check reports it; the server goes on
        print(f"checkers: chapter {module} could not be loaded: {error!r}", file=sys.stderr)


def run(request: dict) -> dict:
    """Run one check request, in forked processes where the system has fork."""
    if not isinstance(request.get("module"), str) or not request["module"].startswith("checkers.chapters."):
        return sandbox.internal({"exercise": str(request.get("exercise")), "module": ""}, "an unknown chapter")
    load(request["module"])
    if not sandbox.FORK:
        return sandbox.run_spawned(request)
    if threading.active_count() > 1:  # a fork would copy a lock some other thread holds
        return sandbox.internal(request, "the check server runs other threads, so it cannot fork safely")
    return sandbox.run_forked(request)


hard_timeout = sandbox.hard_timeout
run_spawned = sandbox.run_spawned


def serve() -> None:
    """Answer requests from stdin until it closes (the kernel went away)."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by imports goes to stderr, not into the protocol
    if "" in sys.path:  # the judge never imports from the folder it was started in
        sys.path.remove("")
    importlib.import_module("flask")  # what every chapter needs, warm before the first check
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if line.strip():
            request = json.loads(line)
            answer = {"reply_to": request.get("id"), "result": run(request)}
            out.write(json.dumps(answer) + "\n")
            out.flush()


class Client:
    """The kernel's side: starts the server on demand and asks it to run checks."""

    def __init__(self, env: dict[str, str] | None = None):
        """`env`: variables the server (and so every check) sees over this process's own."""
        self.process: subprocess.Popen | None = None
        self.env = env or {}

    def start(self) -> None:
        if self.process and self.process.poll() is None:
            return
        env = {**os.environ, **self.env, "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "checkers.engine.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # an interrupt in the kernel must not kill the server
            text=True,
            bufsize=1,
        )
        self._ready = False

    def run(self, module: str, exercise: str, project: Path, seed: int | None = None,
            sandbox_socket: str | None = None) -> Result:
        """Run a check; `seed` replays an earlier one (otherwise the judge draws a new seed).

        `sandbox_socket` is the socket of a graded notebook's sandbox, where the learner's process
        is then forked (the grader's; see `forkserver.py`).
        """
        request = {
            "id": os.urandom(8).hex(),
            "module": module,
            "exercise": exercise,
            "project": str(Path(project).resolve()),
        }
        if seed is not None:
            request["seed"] = int(seed)
        if sandbox_socket is not None:
            request["sandbox"] = str(sandbox_socket)
        if not sandbox.FORK:
            return Result.from_dict(run_spawned(request))
        for _ in range(2):
            self.start()
            try:
                return Result.from_dict(self._ask(request))
            except (OSError, ValueError, TimeoutError):
                self.stop()  # a dead or confused server: start a new one and try once more
        return Result(exercise, exercise, Outcome.ERROR, message="The check server could not be started.")

    def _ask(self, request: dict) -> dict:
        process = self.process
        if not self._ready:
            self._readline(60)  # the server's first line says it has finished preloading
            self._ready = True
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        while True:  # an answer to anything but this request (a stray line) is not ours
            waiting = sandbox.SANDBOX_START if "sandbox" in request else 0
            answer = json.loads(self._readline(hard_timeout(None) * 4 + 10 + waiting))
            if isinstance(answer, dict) and answer.get("reply_to") == request["id"]:
                return answer["result"]

    def _readline(self, timeout: float) -> str:
        stdout = self.process.stdout
        if not select.select([stdout], [], [], timeout)[0]:
            raise TimeoutError("the check server did not answer")
        line = stdout.readline()
        if not line:
            raise OSError("the check server exited")
        return line

    def stop(self) -> None:
        if self.process:
            try:
                self.process.kill()
                self.process.wait(5)
            except OSError:
                pass
            for stream in (self.process.stdin, self.process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self.process = None


_client: Client | None = None


def client() -> Client:
    global _client
    if _client is None:
        _client = Client()
    return _client


if __name__ == "__main__":
    serve()
