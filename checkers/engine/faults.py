"""What the learner's code did wrong, told in a sentence and with the learner's own line.

Used in the learner's process, where the learner's code runs; the judge only ever sees
the text these functions make.
"""
from __future__ import annotations

import linecache
import os
import re
import traceback
from pathlib import Path

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # memory addresses change every run and mean nothing


class CheckTimeout(BaseException):
    """Raised inside the learner's code when its time is up."""


class LearnerExit(BaseException):
    """The learner's code tried to end the process."""


def message(error: BaseException) -> str:
    try:
        return " ".join(str(error).split())[:300]
    except BaseException:  # noqa: BLE001 — a broken __str__ is the learner's, not ours
        return ""


def one_line(error: BaseException) -> str:
    """`KeyError: 'x'` at the innermost frame's file and line (for faults of the course's own code)."""
    frames = traceback.extract_tb(error.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"`{type(error).__name__}: {message(error)}`{place}"


def safe_repr(value, limit: int = 300) -> str:
    """repr() of a learner's object, which may raise, recurse or be enormous."""
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001
        text = f"<{type(value).__name__} whose repr() fails>"
    text = ADDRESS.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(error: BaseException) -> str:
    """Say in a sentence what the learner's code did."""
    if isinstance(error, LearnerExit):
        return f"Your code called `{error.args[0]}`, which would end the whole program"
    if isinstance(error, SystemExit):
        return "Your code called `sys.exit()` (or `exit()`), which would end the whole program"
    if isinstance(error, MemoryError):
        return "Your code ran out of memory (the check allows a few hundred megabytes)"
    if isinstance(error, SyntaxError):
        return f"Python could not read your code: `SyntaxError: {error.msg}`"
    text = message(error)
    return f"Your code raised `{type(error).__name__}" + (f": {text}`" if text else "`")


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


def frame_where(frame, project: Path, prefer: str | None = None) -> str | None:
    """Point at the line of the learner's code that a running stack is in (where a timeout stopped it).

    The innermost frame in the file `prefer` (relative to `project`) wins, else the innermost in the project.
    """
    root = str(project) + os.sep
    found = None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(root) and (found is None or name[len(root):] == prefer):
            found = frame
            if name[len(root):] == prefer:
                break
        frame = frame.f_back
    if found is None:
        return None
    name = found.f_code.co_filename
    line = linecache.getline(name, found.f_lineno).strip()
    return f"{name[len(root):]}, line {found.f_lineno}, in {found.f_code.co_name}\n    {line}"
