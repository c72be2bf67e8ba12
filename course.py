#!/usr/bin/env python3
"""Set up the TicketHub course and use it. Needs only Python 3.11+.

    python3 course.py lab      set up, then open JupyterLab at the course index
    python3 course.py test     set up, then run every test (what CI runs)
    python3 course.py setup    set up only

Setting up means: a virtual environment in .venv/, the pinned packages of
requirements.txt and the course's `checkers` package installed into it. It is done once
and redone only when requirements.txt or pyproject.toml change. `test` also installs
requirements-test.txt and, as root on Debian, the chromium the browser tests drive.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "tickethub-installed.txt"
TEST_STAMP = VENV / "tickethub-test-installed.txt"
CHROMIUM = Path("/usr/bin/chromium")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
# JupyterLab's news and update pop-ups only distract in a course
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}
}


def say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def run(*args, **kwargs) -> None:
    done = subprocess.run([str(a) for a in args], cwd=ROOT, **kwargs)
    if done.returncode:
        sys.exit(done.returncode)


def current(stamp: Path, *names: str) -> tuple[bool, str]:
    """Were these files installed as they are now? Returns the answer and their digest."""
    wanted = hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in names)).hexdigest()
    return stamp.exists() and stamp.read_text().strip() == wanted, wanted


def pip_install(*args) -> None:
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *args)


def setup() -> None:
    """Create .venv and install what the course needs, unless it is already current."""
    if sys.version_info < (3, 11):
        sys.exit(f"TicketHub needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    done, wanted = current(STAMP, "requirements.txt", "pyproject.toml")
    if PYTHON.exists() and done:
        return
    if not PYTHON.exists():
        say("creating the virtual environment in .venv/")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    say("installing the pinned packages and the checkers package (about a minute, once)")
    pip_install("-r", "requirements.txt", "-e", ".")
    overrides = VENV / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_text(json.dumps(LAB_OVERRIDES, indent=2) + "\n")
    STAMP.write_text(wanted + "\n")
    say("setup complete")


def setup_tests() -> None:
    """Install the test-only packages, and chromium where we may (root, with apt-get)."""
    done, wanted = current(TEST_STAMP, "requirements-test.txt")
    if not done:
        say("installing the test-only packages (requirements-test.txt)")
        pip_install("-r", "requirements-test.txt")
        TEST_STAMP.write_text(wanted + "\n")
    if CHROMIUM.exists():
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        say(f"no {CHROMIUM}: the browser tests will be skipped (install Debian's `chromium` to run them)")
        return
    say("installing Debian's chromium for the browser tests (once)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        if subprocess.run(command, env=env).returncode:
            say("could not install chromium: the browser tests will be skipped (and fail in CI)")
            return


def lab() -> None:
    say("opening JupyterLab at notebooks/index.ipynb (stop it with Ctrl+C)")
    run(BIN / "jupyter", "lab", "notebooks/index.ipynb")


def test(extra: list[str]) -> None:
    setup_tests()
    say("checking that notebooks/ and the checkpoints are built from solutions/")
    run(PYTHON, "-m", "checkers", "build", "--check")
    say("running the tests (the browser tests save screenshots in tests/screenshots/)")
    workers = str(min(4, os.cpu_count() or 1))
    run(PYTHON, "-m", "pytest", "-n", workers, "--dist", "loadfile", *extra)


def main(argv: list[str]) -> None:
    command, extra = (argv[0], argv[1:]) if argv else ("help", [])
    if command not in ("setup", "lab", "test"):
        print(__doc__)
        sys.exit(0 if command in ("help", "-h", "--help") else 2)
    setup()
    if command == "lab":
        lab()
    elif command == "test":
        test(extra)


if __name__ == "__main__":
    main(sys.argv[1:])
