"""The gradebook: grades.csv, results.jsonl, a readable report.html and feedback per learner."""
from __future__ import annotations

import csv
import html
import json
from collections import Counter, defaultdict
from pathlib import Path

COLUMNS = ["learner", "notebook", "exercise", "outcome", "counted", "seed", "message", "sandbox"]
# which of an exercise's two verdicts counted: at its check cell, or on the notebook's final state
AT_CELL, FINAL = "check cell", "final state"
SANDBOXED = "bwrap"  # the `sandbox` of a row graded in a sandbox of its own; anything else says why not


def row(learner, notebook, exercise, outcome, message, notes=(), counted="", seed=None, other="") -> dict:
    """A gradebook row; `other` is the outcome of the verdict that did not count, if there was one."""
    return {"learner": learner, "notebook": notebook, "exercise": exercise, "outcome": outcome,
            "counted": counted, "seed": "" if seed is None else seed, "message": message,
            "other": other, "notes": list(notes)}


def unsafe(rows: list[dict]) -> bool:
    """Was any of these rows graded without a sandbox (`grade --unsafe`)?"""
    return any(r.get("sandbox", SANDBOXED) != SANDBOXED for r in rows)


def read(folder: Path) -> list[dict]:
    lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def write(out: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: (r["learner"], r["notebook"], _number(r["exercise"])))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "grades.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    by_learner = defaultdict(list)
    for r in rows:
        by_learner[r["learner"]].append(r)
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for learner, mine in by_learner.items():
        (feedback / f"{learner}.md").write_text(_feedback(learner, mine), encoding="utf-8")
    (out / "report.html").write_text(_report(rows, by_learner), encoding="utf-8")


def _number(exercise: str) -> int:
    return int(exercise.removeprefix("ex")) if exercise.removeprefix("ex").isdigit() else 0


def _feedback(learner: str, rows: list[dict]) -> str:
    passed = sum(r["outcome"] == "PASS" for r in rows)
    parts = [f"# Feedback for {learner}\n\n{passed} of {len(rows)} exercises pass.\n"]
    if unsafe(rows):
        parts.append("\nGraded without a sandbox (`grade --unsafe`).\n")
    notebook = None
    for r in rows:
        if r["notebook"] != notebook:
            notebook = r["notebook"]
            parts.append(f"\n## {notebook}\n")
            for note in r.get("notes", []):
                parts.append(f"- A cell failed when your notebook ran: {note}\n")
        parts.append(f"\n### Exercise {_number(r['exercise'])}: {r['outcome']}\n\n{_counted(r)}```text\n{r['message']}\n```\n")
    return "".join(parts)


def _counted(r: dict) -> str:
    """Which verdict counted, said to the learner (nothing for a row graded without a check)."""
    if r.get("counted") == FINAL:
        return (f"Counted: the check on your notebook's final state, after every cell ran "
                f"(at its check cell it was {r.get('other') or 'not reached'}).\n\n")
    if r.get("counted") == AT_CELL and r.get("other"):
        return f"Counted: the check at its check cell (on your notebook's final state it was {r['other']}).\n\n"
    return ""


def _report(rows: list[dict], by_learner: dict) -> str:
    e = html.escape
    learners = []
    for learner, mine in sorted(by_learner.items()):
        counts = Counter(r["outcome"] for r in mine)
        passed = counts["PASS"]
        other = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "PASS")
        late = sum(r["outcome"] == "PASS" and r.get("counted") == FINAL for r in mine)
        passed_text = f"{passed}/{len(mine)}" + (f" ({late} on the final state)" if late else "")
        learners.append(
            f"<tr><td>{e(learner)}</td><td>{e(passed_text)}</td><td>{100 * passed / len(mine):.0f}%</td>"
            f"<td>{e(other)}</td><td><a href=\"feedback/{e(learner)}.md\">feedback</a></td></tr>"
        )
    exercises = defaultdict(Counter)
    for r in rows:
        exercises[(r["notebook"], r["exercise"])][r["outcome"]] += 1
    ranked = sorted(exercises.items(), key=lambda item: (item[1]["PASS"] / sum(item[1].values()), item[0]))
    struggles = []
    for (notebook, exercise), counts in ranked:
        total = sum(counts.values())
        rate = 100 * counts["PASS"] / total
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        struggles.append(
            f"<tr><td>{e(notebook)}</td><td>{e(exercise)}</td><td>{rate:.0f}%</td>"
            f"<td><div style=\"background:#2e9d4f;height:10px;width:{rate:.0f}px\"></div></td><td>{e(detail)}</td></tr>"
        )
    return (
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>TicketHub gradebook</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:left}</style>"
        f"<h1>TicketHub gradebook</h1>{_sandbox_note(rows)}<p>{len(by_learner)} learners, {len(rows)} graded exercises, "
        f"{sum(r['outcome'] == 'PASS' for r in rows)} passed.</p>"
        "<h2>Learners</h2><table><tr><th>learner</th><th>passed</th><th>score</th><th>other outcomes</th>"
        f"<th></th></tr>{''.join(learners)}</table>"
        "<h2>Exercises, hardest first</h2><table><tr><th>notebook</th><th>exercise</th><th>pass rate</th>"
        f"<th></th><th>outcomes</th></tr>{''.join(struggles)}</table></html>\n"
    )


def _sandbox_note(rows: list[dict]) -> str:
    if not unsafe(rows):
        return "<p>Each notebook was graded in a sandbox of its own (bubblewrap).</p>"
    count = sum(r.get("sandbox", SANDBOXED) != SANDBOXED for r in rows)
    return ("<p style=\"background:#c0392b;color:#fff;padding:6px\"><strong>Graded with --unsafe</strong>: "
            f"{count} of {len(rows)} rows were graded without a sandbox, where a submission could read and change "
            "other learners' work, the course's code and the machine. Do not trust them for assessed work.</p>")
