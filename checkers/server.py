"""The check server: a warm process that forks a fresh child for every check.

The kernel starts one server (`python -m checkers.server`) and talks to it over its stdin
and stdout, one JSON line per request. The server imports Flask and the chapter modules
once; each check runs in a forked child with its own copy of the learner's project, its
own process group and a hard time limit, so nothing in the kernel can change a result and
nothing a check does can hang or crash the kernel.
"""
from __future__ import annotations

import importlib
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .outcomes import Outcome, Result

HARD_MARGIN = 3.0  # seconds the child gets past its own soft timeout before it is killed
_real_exit = os._exit  # the child's guard replaces os._exit; the child itself still needs it


def preload() -> None:
    """Load every chapter module and checkpoint (and so Flask and friends) before any fork.

    Loading the checkpoints now also means a check never reads the course's files later,
    when a submission under grading might have changed them.
    """
    from . import workspace

    for chapter in workspace.chapters():
        try:
            workspace.checkpoint(chapter)
            for warm_up in importlib.import_module(workspace.module_name(chapter)).chapter.warm_ups:
                warm_up()
        except Exception as error:  # noqa: BLE001 — one broken chapter must not stop the others' checks
            print(f"checkers: chapter {chapter} could not be preloaded: {error!r}", file=sys.stderr)


def scratch_folder() -> str:
    """A new folder for one check: in memory (/dev/shm) where there is one, as disks are slow."""
    root = os.environ.get("TICKETHUB_SCRATCH")
    if root is None and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        root = "/dev/shm"
    return tempfile.mkdtemp(prefix="tickethub-check-", dir=root)


def hard_timeout() -> float:
    from .checking import SOFT_TIMEOUT

    return SOFT_TIMEOUT + HARD_MARGIN


def run_forked(request: dict) -> dict:
    """Run one check in a forked child and return its result, whatever the child does."""
    scratch = scratch_folder()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(reader)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        try:
            payload = _run_request(request, Path(scratch))
        except BaseException as error:  # noqa: BLE001 — report, never hang the parent
            payload = {"internal": f"{type(error).__name__}: {error}"}
        data = json.dumps(payload).encode()
        while data:
            data = data[os.write(writer, data) :]
        _real_exit(0)
    os.close(writer)
    chunks, deadline, timed_out = [], time.monotonic() + hard_timeout(), False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                timed_out = True
                break
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
        _kill_group(pid)
        _, status = os.waitpid(pid, 0)
        shutil.rmtree(scratch, ignore_errors=True)
    return _decode(request, b"".join(chunks), status, timed_out)


def _run_request(request: dict, scratch: Path) -> dict:
    from .checking import run_in_this_process

    return run_in_this_process(
        request["module"], request["exercise"], Path(request["project"]), request["seed"], scratch
    )


def run_spawned(request: dict) -> dict:
    """Where there is no fork (Windows): run the check in a new interpreter."""
    scratch = scratch_folder()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "checkers.server", "--once", scratch],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=hard_timeout() + 5,
        )
    except subprocess.TimeoutExpired:
        return _decode(request, b"", 0, True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _decode(request, done.stdout, done.returncode, False)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _decode(request: dict, data: bytes, status: int, timed_out: bool) -> dict:
    key = request["exercise"]
    title = _title(request)
    if timed_out:
        return Result(
            key,
            title,
            Outcome.TIMEOUT,
            message=(
                f"The check did not finish within {hard_timeout():g} seconds and was stopped. "
                "Is there a loop that never ends, or code that waits for something that never comes?"
            ),
        ).to_dict()
    try:
        payload = json.loads(data)
    except ValueError:
        how = f"signal {-status}" if status < 0 else f"exit status {status}"
        if hasattr(os, "WIFSIGNALED") and os.WIFSIGNALED(status):
            how = f"signal {os.WTERMSIG(status)}"
        elif hasattr(os, "WIFEXITED") and os.WIFEXITED(status):
            how = f"exit status {os.WEXITSTATUS(status)}"
        return Result(
            key, title, Outcome.ERROR,
            message=f"The check's process ended abruptly ({how}) while running your code. "
            "Does your code end the process or crash the interpreter?",
        ).to_dict()
    if "internal" in payload:
        return Result(
            key, title, Outcome.ERROR,
            message=f"The checker could not run this check ({payload['internal']}). "
            "Please report this as a bug in the course.",
        ).to_dict()
    return payload


def _title(request: dict) -> str:
    try:
        return importlib.import_module(request["module"]).chapter.get(request["exercise"]).title
    except Exception:  # noqa: BLE001 — a title is nice to have, never worth a crash
        return request["exercise"]


def serve() -> None:
    """Answer requests from stdin until it closes (the kernel went away)."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by imports goes to stderr, not into the protocol
    preload()
    run = run_forked if hasattr(os, "fork") else run_spawned
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if line.strip():
            out.write(json.dumps(run(json.loads(line))) + "\n")
            out.flush()


class Client:
    """The kernel's side: starts the server on demand and asks it to run checks."""

    def __init__(self):
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if self.process and self.process.poll() is None:
            return
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "checkers.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # an interrupt in the kernel must not kill the server
            text=True,
            bufsize=1,
        )
        self._ready = False

    def run(self, module: str, exercise: str, project: Path) -> Result:
        request = {
            "module": module,
            "exercise": exercise,
            "project": str(Path(project).resolve()),
            "seed": random.SystemRandom().randrange(2**32),
        }
        if not hasattr(os, "fork"):
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
        return json.loads(self._readline(hard_timeout() + 10))

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


def main(argv: list[str]) -> None:
    if argv[:1] == ["--once"]:
        request = json.loads(sys.stdin.read())
        preload()
        payload = _run_request(request, Path(argv[1]))
        sys.stdout.write(json.dumps(payload))
        sys.stdout.flush()
        _real_exit(0)
    serve()


if __name__ == "__main__":
    main(sys.argv[1:])
