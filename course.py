#!/usr/bin/env python3
"""Set up the TicketHub course and use it. Needs only Python 3.11+.

    python3 course.py lab      set up, then open JupyterLab at the course index
    python3 course.py test     set up, then run every test (what CI runs)
    python3 course.py setup    set up only

Setting up means: a virtual environment in .venv/, the pinned packages of
requirements.txt and the course's `checkers` package installed into it. It is done once
and redone only when requirements.txt or pyproject.toml change.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "tickethub-installed.txt"
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


def setup() -> None:
    """Create .venv and install what the course needs, unless it is already current."""
    if sys.version_info < (3, 11):
        sys.exit(f"TicketHub needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    wanted = hashlib.sha256(
        b"".join((ROOT / name).read_bytes() for name in ("requirements.txt", "pyproject.toml"))
    ).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        say("creating the virtual environment in .venv/")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    say("installing the pinned packages and the checkers package (about a minute, once)")
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
        "-r", "requirements.txt", "-e", ".")
    overrides = VENV / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True, exist_ok=True)
    overrides.write_text(json.dumps(LAB_OVERRIDES, indent=2) + "\n")
    STAMP.write_text(wanted + "\n")
    say("setup complete")


def lab() -> None:
    say("opening JupyterLab at notebooks/index.ipynb (stop it with Ctrl+C)")
    run(BIN / "jupyter", "lab", "notebooks/index.ipynb")


def test(extra: list[str]) -> None:
    say("checking that notebooks/ and the checkpoints are built from solutions/")
    run(PYTHON, "-m", "checkers", "build", "--check")
    say("running the tests")
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
