#!/usr/bin/env python3
"""Set up the TicketHub course and use it. Needs only Python 3.11+.

    python3 course.py lab [JUPYTERLAB OPTIONS...]   set up, then open JupyterLab at the course index
    python3 course.py update                        get the course's new version; your work is kept
    python3 course.py test [PYTEST OPTIONS...]      set up, then run every test (what CI runs)
    python3 course.py site [SPHINX OPTIONS...]      set up, then build the course website
    python3 course.py setup                         set up only
    python3 course.py help [COMMAND]                this help, or a command's

Setting up means: a virtual environment in .venv/, the pinned packages of
requirements.txt and the course's `checkers` package installed into it. It is done once
and redone only when requirements.txt or pyproject.toml change. `test` also installs
requirements-test.txt and requirements-site.txt and, as root on Debian, the chromium the
browser tests drive and the bubblewrap the grader's sandbox is built on; `site` installs
requirements-site.txt.

You work in my-notebooks/, your own copies of the course's notebooks (notebooks/), which git
ignores: `lab` and `update` bring them up to date and never overwrite a notebook you changed.
"""
from __future__ import annotations

import hashlib
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
SITE_STAMP = VENV / "tickethub-site-installed.txt"
MINE = "my-notebooks"  # the learner's copies: checkers.paths.MINE
INDEX = f"{MINE}/index.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
# JupyterLab's news and update pop-ups only distract in a course
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
    done, wanted = current(STAMP, "requirements.txt", "pyproject.toml", "checkers/notebook/magics.py")
    if PYTHON.exists() and done:
        return
    if not PYTHON.exists():
        say("creating the virtual environment in .venv/")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    say("installing the pinned packages and the checkers package (about a minute, once)")
    pip_install("-r", "requirements.txt", "-e", ".")
    # the kernels' %%writefile that explains a missing setup, and JupyterLab without pop-ups
    run(PYTHON, "-m", "checkers.notebook.magics", stdout=subprocess.DEVNULL)
    STAMP.write_text(wanted + "\n")
    say("setup complete")


def install_once(stamp: Path, requirements: str, what: str) -> None:
    """Install a requirements file into .venv, unless it was installed as it is now."""
    done, wanted = current(stamp, requirements)
    if not done:
        say(f"installing {what} ({requirements})")
        pip_install("-r", requirements)
        stamp.write_text(wanted + "\n")


def setup_site() -> None:
    """Install what builds the website (Sphinx, MyST-NB, the theme), unless it is current."""
    install_once(SITE_STAMP, "requirements-site.txt", "the website's packages")


def setup_tests() -> None:
    """Install the test-only packages, and Debian's chromium and bubblewrap where we may (root, apt-get)."""
    install_once(TEST_STAMP, "requirements-test.txt", "the test-only packages")
    setup_site()  # tests/test_site.py builds the website
    wanted = {"chromium": (CHROMIUM.exists(), "the browser tests"),
              "bubblewrap": (shutil.which("bwrap") is not None, "the grader's sandbox (tests/test_grade.py)")}
    missing = [name for name, (present, _) in wanted.items() if not present]
    if not missing:
        return
    uses = ", ".join(f"`{name}` for {wanted[name][1]}" for name in missing)
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        say(f"missing Debian packages: {uses}; those tests will be skipped (install them to run them)")
        return
    say(f"installing Debian's {' and '.join(missing)} (once): {uses}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        if subprocess.run(command, env=env).returncode:
            say(f"could not install {' and '.join(missing)}: those tests will be skipped (and fail in CI)")
            return


def running_as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def chosen_path(extra: list[str]) -> str | None:
    """The notebook or folder the learner asked JupyterLab to open, if any."""
    return next((a for a in extra if not a.startswith("-") and (ROOT / a).exists()), None)


def lab_command(extra: list[str], root: bool | None = None) -> list[str]:
    """The JupyterLab command line for `course.py lab EXTRA...`.

    Opens the course index unless EXTRA names a file or folder to open; as root it adds
    `--allow-root` (JupyterLab refuses to start without it), unless EXTRA already decides.
    """
    root = running_as_root() if root is None else root
    command = [str(PYTHON), "-m", "jupyterlab"]
    # JupyterLab opens only the first path it is given: the learner's own choice wins
    if chosen_path(extra) is None:
        command.append(INDEX)
    if root and not any(a.split("=")[0] in ("--allow-root", "--ServerApp.allow_root") for a in extra):
        command.append("--allow-root")
    return command + extra


def sync_copies() -> None:
    """Copy new and changed notebooks into my-notebooks/, keeping every notebook the learner changed."""
    run(PYTHON, "-m", "checkers.notebook.copies")


def update() -> None:
    """Pull the course's new version (when this is a git clone), then set up and sync the copies."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        say("getting the course's new version (git pull --ff-only)")
        done = subprocess.run(["git", "pull", "--ff-only"], cwd=ROOT)
        if done.returncode:
            sys.exit("git pull did not complete (see above); your notebooks in my-notebooks/ are untouched")
    else:
        say("not a git clone: copy the new version over this folder, then run this again")
    setup()
    sync_copies()


def lab(extra: list[str]) -> None:
    sync_copies()
    command = lab_command(extra)
    say(f"starting JupyterLab at {chosen_path(extra) or INDEX} (stop it with Ctrl+C)")
    say("it opens your browser; if it does not (or with --no-browser), open the URL it prints below")
    say('after "To access the server": http://localhost:8888/lab?token=... (or the --port you chose)')
    foreground(command)


def foreground(command: list[str]) -> None:
    """Hand the terminal to a server: Ctrl+C and its exit status are its own."""
    sys.stdout.flush()
    if os.name == "posix":
        os.chdir(ROOT)
        os.execv(command[0], command)  # one process: a signal to this pid reaches the server
    process = subprocess.Popen(command, cwd=ROOT)
    while True:
        try:
            sys.exit(process.wait())
        except KeyboardInterrupt:
            continue  # the console sent Ctrl+C to the server too: let it shut down cleanly


def test(extra: list[str]) -> None:
    setup_tests()
    say("checking that notebooks/ and the checkpoints are built from solutions/")
    run(PYTHON, "-m", "checkers", "build", "--check")
    say("running the tests (the browser tests save screenshots in tests/screenshots/)")
    workers = str(min(4, os.cpu_count() or 1))
    run(PYTHON, "-m", "pytest", "-n", workers, "--dist", "loadfile", *extra)


def site(extra: list[str]) -> None:
    setup_site()
    say("building the course website into site/_build/html/ (warnings fail the build)")
    run(PYTHON, "site/build.py", *extra)


HELP = {
    "setup": """\
python3 course.py setup

Create .venv/ and install the pinned packages (requirements.txt) and the course's
`checkers` package, unless that is already done. `lab`, `test` and `site` do it first anyway.
""",
    "lab": f"""\
python3 course.py lab [JUPYTERLAB OPTIONS...]

Set up if needed, bring your copies of the notebooks (my-notebooks/) up to date with the
course's (new chapters are copied; a notebook you changed is never overwritten), then start
JupyterLab at the course index ({INDEX}).
It opens your browser; if it does not (or with --no-browser), open the URL JupyterLab prints
after "To access the server": http://localhost:8888/lab?token=... (or the port you chose).
Stop it with Ctrl+C.

Every option goes to JupyterLab unchanged, for example:
  --no-browser          do not open a browser (open the printed address yourself)
  --port=8890           serve on another port (--ServerApp.port_retries=0: that one or fail)
  --ip=0.0.0.0          listen on every interface, e.g. in a container (default: localhost)
  my-notebooks/03-database.ipynb   open that notebook instead of the index
As root, --allow-root is added for you (JupyterLab refuses root without it).
JupyterLab's own list: python3 course.py lab -- --help-all (after `--`, even --help goes to it).
""",
    "update": """\
python3 course.py update

Get the course's new version with `git pull --ff-only`, set up again if the packages changed,
and bring my-notebooks/ up to date: a new chapter is copied; a notebook you never changed is
replaced by its new version; a notebook you changed is kept exactly as it is, and the new
version is written beside it as `NN-topic (new version).ipynb`, to compare and move your work
over. Your projects and progress (my-notebooks/work/) are never touched.
""",
    "test": """\
python3 course.py test [PYTEST OPTIONS...]

Set up if needed (with the test-only packages, the website's packages and, as root on
Debian, chromium and bubblewrap), check that notebooks/ and the checkpoints are built
from solutions/, then run the whole suite with pytest, in parallel. CI runs exactly this.

Every option goes to pytest unchanged, for example:
  -k ch01               only the tests whose names match
  -x                    stop at the first failure
  tests/test_site.py    only that file
  TICKETHUB_SEEDS=200 python3 course.py test -k ch01   sweep more seeds
pytest's own list: python3 course.py test -- --help (after `--`, even --help goes to it).
""",
    "site": """\
python3 course.py site [SPHINX-BUILD OPTIONS...]

Set up if needed (with requirements-site.txt), then build the course website into
site/_build/html/ with Sphinx and MyST-NB: the index and one page per chapter, from
solutions/ with their stored outputs (no notebook is run). Any warning fails the build.
Open site/_build/html/index.html, or serve it:
  python3 -m http.server -d site/_build/html 8000
Options go to sphinx-build, e.g. -q (quiet) or -j auto (parallel).
""",
}


def wants_help(extra: list[str]) -> bool:
    """Does `extra` ask for help? Not after `--`, which passes everything on."""
    options = extra[:extra.index("--")] if "--" in extra else extra
    return any(a in ("-h", "--help") for a in options)


def passed_on(extra: list[str]) -> list[str]:
    """The arguments for the tool, without the `--` that protects them."""
    return [a for i, a in enumerate(extra) if not (a == "--" and "--" not in extra[:i])]


def main(argv: list[str]) -> None:
    command, extra = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("help", "-h", "--help"):
        print(HELP.get(extra[0], __doc__) if extra else __doc__)
        sys.exit(0 if not extra or extra[0] in HELP else 2)
    if command not in HELP:
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        sys.exit(2)
    if wants_help(extra):
        print(HELP[command])
        sys.exit(0)
    if command in ("setup", "update") and extra:
        print(f"`{command}` takes no options\n\n{HELP[command]}", file=sys.stderr)
        sys.exit(2)
    if command == "update":
        update()
        return
    setup()
    if command == "lab":
        lab(passed_on(extra))
    elif command == "test":
        test(passed_on(extra))
    elif command == "site":
        site(passed_on(extra))


if __name__ == "__main__":
    main(sys.argv[1:])
