"""Check outcomes and how they are shown: HTML in JupyterLab, plain text elsewhere."""
from __future__ import annotations

import enum
import html
import re
from dataclasses import asdict, dataclass, field


class Outcome(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NOT_ATTEMPTED = "NOT_ATTEMPTED"
    ERROR = "ERROR"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"  # a fault in the course's own check, never the learner's


# step statuses: passed, failed, skipped (an earlier step failed), or the outcome that stopped it
MARKS = {"passed": "✓", "failed": "✗", "skipped": "–", "error": "!", "timeout": "…"}  # glyphs every font has
MEANINGS = {"passed": "passed", "failed": "failed", "skipped": "skipped: fix the step above it first",
            "error": "your code raised an exception", "timeout": "your code ran too long"}

# each outcome's word is white on its colour, a label that reads the same on JupyterLab's
# light and dark themes (contrast over 5:1); the colours also stand out from both backgrounds
COLOURS = {
    Outcome.PASS: "#1e7b3c",
    Outcome.FAIL: "#b35309",
    Outcome.NOT_ATTEMPTED: "#5b6775",
    Outcome.ERROR: "#c0392b",
    Outcome.TIMEOUT: "#8e44ad",
    Outcome.INTERNAL: "#1f5f99",
}


def outcome_label(outcome: Outcome) -> str:
    """The outcome's word as a small coloured label."""
    return (
        f'<strong class="tickethub-label" style="background:{COLOURS[outcome]};color:#fff;'
        f'padding:0 6px;border-radius:3px">{outcome.value}</strong>'
    )


@dataclass
class Step:
    """One link in an exercise's chain of checks."""

    name: str
    status: str
    expected: str | None = None
    seen: str | None = None
    hint: str | None = None


@dataclass
class Result:
    """What a check found, ready to be shown or stored."""

    exercise: str
    title: str
    outcome: Outcome
    steps: list[Step] = field(default_factory=list)
    message: str | None = None  # the one thing to say when no step explains it
    where: str | None = None  # learner's file, line and source, for ERROR and TIMEOUT
    seed: int | None = None  # the check's random seed: `exN.check(seed=...)` replays it

    @property
    def heading(self) -> str:
        return f"Exercise {self.exercise.removeprefix('ex')}: {self.title}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        steps = [Step(**s) for s in data.get("steps", [])]
        return cls(**{**data, "outcome": Outcome(data["outcome"]), "steps": steps})

    def text(self, seed: bool = True) -> str:
        """The plain form; with `seed`, a last line that says how to replay the check."""
        lines = [f"[{self.outcome.value}] {self.heading}"]
        if self.message:
            lines += _indent(self.message, 2)
        if self.where:
            lines += _indent(self.where, 4)
        for step in self.steps:
            lines.append(f"  {MARKS[step.status]} {step.name}")
            for label, value in _details(step):
                lines += _indent(f"{label}: {value}", 6)
        if self.legend():
            lines.append(f"  ({self.legend()})")
        # an INTERNAL always shows its seed: it is what a maintainer needs to replay the fault
        if (seed or self.outcome is Outcome.INTERNAL) and self.seed is not None and self.outcome is not Outcome.NOT_ATTEMPTED:
            lines.append(f"  (seed {self.seed}: `{self.exercise}.check(seed={self.seed})` replays this check)")
        return "\n".join(lines)

    def legend(self) -> str:
        """What the marks of a block that did not pass mean: `✗ failed · – skipped: ...`."""
        shown = dict.fromkeys(step.status for step in self.steps if step.status != "passed")
        return " · ".join(f"{MARKS[status]} {MEANINGS[status]}" for status in shown)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        # what a notebook stores: without the seed, so stored outputs stay the same every run
        return self.text(seed=False)

    def _repr_html_(self) -> str:
        colour = COLOURS[self.outcome]
        parts = [
            f'<div class="tickethub-result tickethub-{self.outcome.value.lower()}" '
            f'style="border-left:5px solid {colour};background:{colour}1a;'
            'padding:6px 12px;margin:4px 0;border-radius:3px;line-height:1.5">',
            f"<div>{outcome_label(self.outcome)} &nbsp;{_inline(self.heading)}</div>",
        ]
        if self.message:
            parts.append(f"<div>{_inline(self.message)}</div>")
        if self.where:
            parts.append(f"<pre style=\"margin:4px 0 4px 1em\">{html.escape(self.where)}</pre>")
        if self.steps:
            parts.append('<ul style="list-style:none;padding-left:0.5em;margin:4px 0">')
            for step in self.steps:
                parts.append(f'<li><span title="{MEANINGS[step.status]}">{MARKS[step.status]}</span> {_inline(step.name)}')
                for label, value in _details(step):
                    parts.append(
                        f'<div style="margin-left:1.6em"><em>{label}:</em> {_inline(value)}</div>'
                    )
                parts.append("</li>")
            parts.append("</ul>")
        if self.legend():
            parts.append(f'<div style="font-size:smaller;opacity:0.8">{html.escape(self.legend())}</div>')
        if self.outcome is Outcome.INTERNAL and self.seed is not None:
            parts.append(f"<div><em>Seed:</em> {self.seed}</div>")
        parts.append("</div>")
        return "".join(parts)


def _details(step: Step):
    for label, value in (("Expected", step.expected), ("Seen", step.seen), ("Hint", step.hint)):
        if value:
            yield label, value


def _indent(text: str, width: int) -> list[str]:
    return [" " * width + line for line in text.splitlines()]


def _inline(text: str) -> str:
    """Escape text and turn `backticks` into <code>, as in the feedback's plain form."""
    escaped = html.escape(text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped).replace("\n", "<br>")


class Text:
    """A block of feedback (a hint or a solution) with a plain and an HTML form."""

    def __init__(self, title: str, body: str, code: bool = False):
        self.title, self.body, self.code = title, body, code

    def __repr__(self) -> str:
        return f"{self.title}\n{self.body}"

    def _repr_html_(self) -> str:
        body = (
            f"<pre>{html.escape(self.body)}</pre>" if self.code else f"<div>{_inline(self.body)}</div>"
        )
        return (
            '<div class="tickethub-text" style="border-left:5px solid #3b82c4;'
            'background:#3b82c41a;padding:6px 12px;margin:4px 0;border-radius:3px">'
            f"<strong>{_inline(self.title)}</strong>{body}</div>"
        )
