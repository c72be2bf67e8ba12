"""An IPython extension for the course's kernels: two things a stuck learner needs to be told.

- After a kernel restart the kernel is back in the notebooks' folder, and an exercise cell run
  before the setup cell would fail with a bare `FileNotFoundError`. This `%%writefile` writes
  exactly as IPython's does, and refuses (writing nothing) only where IPython's would fail: when
  the file's folder does not exist, saying which cell to run.
- A "try it" cell runs the learner's app in the kernel, where an endless loop hangs the cell
  (a check runs elsewhere, under a time limit). A cell that runs long says how to stop it.

`install()` makes every kernel of this Python load it.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import threading
from pathlib import Path

from IPython.core.error import UsageError

from ..paths import GRADER, GRADING

EXTENSION = "checkers.notebook.magics"  # not __name__, which is "__main__" under `python -m`
KERNEL_CONFIG = f"""\
# Written by `python -m {EXTENSION}`: TicketHub's kernels say what to do when a chapter's
# project is not set up yet, and how to stop a cell that runs long (see {EXTENSION.replace('.', '/')}.py).
c.InteractiveShellApp.extensions.append("{EXTENSION}")
"""
LAB_OVERRIDES = {  # JupyterLab's news and update pop-ups only distract in a course
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def target(line: str) -> Path | None:
    """The file a `%%writefile [-a] FILE` line names, or None when the line is not understood."""
    try:
        words = [w for w in shlex.split(line) if w not in ("-a", "--append")]
    except ValueError:
        return None
    return Path(words[0]).expanduser() if len(words) == 1 else None


SLOW_CELL = "TICKETHUB_SLOW_CELL_SECONDS"  # when a running cell says how to stop it (default 20)
STOP_IT = ("[TicketHub] This cell has been running for {:g} s. If your code is stuck (an endless loop, a "
           "request that waits for ever), stop it with the ■ button (Kernel › Interrupt Kernel, or press I twice "
           "outside a cell). Your files and your progress are kept.")


class SlowCellNotice:
    """Print `STOP_IT` into a cell's output once it has run for `after` seconds."""

    def __init__(self, after: float):
        self.after, self.timer = after, None

    def pre_run_cell(self, info) -> None:
        self.timer = threading.Timer(self.after, lambda: print(STOP_IT.format(self.after), flush=True))
        self.timer.daemon = True
        self.timer.start()

    def post_run_cell(self, result) -> None:
        if self.timer is not None:
            self.timer.cancel()


def load_ipython_extension(ipython) -> None:
    if not (os.environ.get(GRADER) or os.environ.get(GRADING)):  # nobody reads a graded notebook's output live
        notice = SlowCellNotice(float(os.environ.get(SLOW_CELL, "20")))
        ipython.events.register("pre_run_cell", notice.pre_run_cell)
        ipython.events.register("post_run_cell", notice.post_run_cell)
    original = ipython.find_cell_magic("writefile")

    def writefile(line: str, cell: str):
        path = target(line)
        if path is not None and not path.parent.is_dir():
            raise UsageError(
                f"Nothing was written: there is no folder `{path.parent.as_posix()}/` here ({Path.cwd().name}/). "
                "Run the setup cell at the top of the notebook first (the one that calls `setup()`): it makes "
                "your project folder and moves into it. After a kernel restart, run it again."
            )
        return original(line, cell)

    writefile.__doc__ = original.__doc__
    ipython.register_magic_function(writefile, "cell", "writefile")


def install(prefix: Path = Path(sys.prefix)) -> list[Path]:
    """Make every kernel of the Python at `prefix` load this extension; quiet JupyterLab's pop-ups."""
    config = prefix / "etc" / "ipython" / "ipython_kernel_config.py"
    overrides = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    for path, text in ((config, KERNEL_CONFIG), (overrides, json.dumps(LAB_OVERRIDES, indent=2) + "\n")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return [config, overrides]


if __name__ == "__main__":
    for written in install():
        print(f"wrote {written}")
