"""`python -m checkers mutate`: how strict is each exercise's check?

Each mutant changes one place in the solution regions of an exercise's reference file (a
swapped comparison, an off-by-one number, a removed statement...). A check that still
PASSes a mutant is lenient, unless the mutant behaves exactly like the reference: those are
listed, with a reason, in `checkers/chapters/equivalents/NN-topic.txt`:

    ex4  tickethub/__init__.py:9 If True  # Config.from_mapping(None) applies nothing

Mutants are made with `ast`, but spliced into the file's text so that everything outside
the mutated expression or statement stays byte-identical.
"""
from __future__ import annotations

import ast
import copy
import difflib
import queue
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..engine import workspace
from ..engine.outcomes import Outcome
from ..engine.server import Client
from ..paths import PACKAGE, module_name

EQUIVALENTS = PACKAGE / "chapters" / "equivalents"
UNSTARTED = "The check server could not be started."  # Client.run's answer when the server is gone

COMPARE_SWAPS = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
    ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
BOOL_SWAPS = {ast.And: ast.Or, ast.Or: ast.And}
ARITH_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
# how each operator is spelt, as a pattern that finds it in the text between two operands
TOKENS = {
    ast.Eq: ("==", "=="), ast.NotEq: ("!=", "!="), ast.Lt: ("<", "<"), ast.LtE: ("<=", "<="),
    ast.Gt: (">", ">"), ast.GtE: (">=", ">="), ast.In: ("in", r"\bin\b"),
    ast.NotIn: ("not in", r"\bnot\s+in\b"), ast.Is: ("is", r"\bis\b"), ast.IsNot: ("is not", r"\bis\s+not\b"),
    ast.And: ("and", r"\band\b"), ast.Or: ("or", r"\bor\b"), ast.Add: ("+", r"\+"), ast.Sub: ("-", "-"),
    ast.Mult: ("*", r"\*"), ast.Div: ("/", "/"),
}
# the codes an API answers with most often: a mutant moves a status to the nearest other one
COMMON_STATUSES = (200, 201, 202, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405,
                   409, 410, 415, 422, 429, 500, 502, 503)
ANNOTATIONS = {"annotation", "returns"}  # never evaluated by a check: mutating them says nothing


# --- generation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mutant:
    """One changed place in one file: `text` is the whole mutated file."""

    id: str
    path: str
    line: int
    operator: str
    before: str
    after: str
    text: str = field(repr=False)

    @property
    def description(self) -> str:
        return f"{self.before} → {self.after}"


@dataclass
class _Candidate:
    operator: str
    holder: ast.AST  # where the target hangs in the tree: holder.field (or holder.field[index])
    field: str
    index: int | None
    target: ast.AST
    replacement: ast.AST
    place: ast.AST  # the node whose source text is replaced (an f-string holding the target)
    precise: list[tuple[int, int, str]] | None = None  # edits of just the operator, when known


def solution_lines(starter: str, solution: str) -> set[int]:
    """Line numbers (from 1) of the solution that the starter does not have: its regions."""
    old, new = starter.split("\n"), solution.split("\n")
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return {j + 1 for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in ("replace", "insert")
            for j in range(j1, j2)}


def generate(path: str, source: str, region: set[int] | None = None) -> list[Mutant]:
    """Every mutant of `source` whose change lies inside `region` (all lines when None)."""
    tree = ast.parse(source)
    lines = source.split("\n")
    data = source.encode("utf-8")
    starts = [0]
    for line in data.split(b"\n"):
        starts.append(starts[-1] + len(line) + 1)

    def offset(lineno: int, col: int) -> int:
        return starts[lineno - 1] + col

    def inside(node: ast.AST) -> bool:
        if region is None:
            return True
        return all(n in region or not lines[n - 1].strip() for n in range(node.lineno, node.end_lineno + 1))

    reference = _normal(tree)
    made, seen = [], {source}
    for order, candidate in enumerate(_candidates(tree, data, offset)):
        if not inside(candidate.place):
            continue
        text = _splice(candidate, tree, data, offset)
        if text is None or text in seen:
            continue
        try:
            compile(text, path, "exec")
        except (SyntaxError, ValueError):
            continue
        if _normal(ast.parse(text)) == reference:
            continue
        seen.add(text)
        line, before, after = _changed(lines, text.split("\n"))
        made.append((line, order, candidate.operator, before, after, text))
    mutants, counts = [], {}
    scopes = _scopes(tree)
    for line, _, operator, before, after, text in sorted(made):
        # named by the function it is in, not by its line: an edit elsewhere in the file keeps the id
        base = f"{path}:{_scope(scopes, line)} {operator}"
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base} #{counts[base]}"
        mutants.append(Mutant(name, path, line, operator, before, after, text))
    return sorted(mutants, key=lambda m: natural(m.id))


def _scopes(tree: ast.Module) -> list[tuple[int, int, str]]:
    """(first line, last line, dotted name) of every function and class, outermost first."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                found.append((child.lineno, child.end_lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _scope(scopes: list[tuple[int, int, str]], line: int) -> str:
    """The innermost function or class holding `line`, or `<module>`."""
    inner = [name for first, last, name in scopes if first <= line <= last]
    return inner[-1] if inner else "<module>"


def _candidates(tree: ast.Module, data: bytes, offset) -> Iterator[_Candidate]:
    """The mutations of every node, in source order, each with where it hangs in the tree."""

    def span(node: ast.AST) -> tuple[int, int]:
        return offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset)

    def between(left: ast.AST, right: ast.AST, old: type, new: type) -> tuple[int, int, str] | None:
        """The edit that respells the operator found between two operands."""
        start, end = span(left)[1], span(right)[0]
        gap = data[start:end].decode("utf-8")
        gap = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), gap)  # not inside a comment
        found = list(re.finditer(TOKENS[old][1], gap))
        if len(found) != 1:
            return None
        at = start + len(gap[:found[0].start()].encode("utf-8"))
        return at, at + len(found[0].group().encode("utf-8")), TOKENS[new][0]

    def walk(node, fstring):
        for name, value in ast.iter_fields(node):
            if name in ANNOTATIONS:
                continue
            children = value if isinstance(value, list) else [value]
            for index, child in enumerate(children):
                if not isinstance(child, ast.AST):
                    continue
                if _docstring(child):
                    continue
                at = index if isinstance(value, list) else None
                for operator, replacement, precise in _mutations(child, between, data, span):
                    yield _Candidate(operator, node, name, at, child, replacement, fstring or child, precise)
                for operator, part, replacement in _statement_mutations(child):
                    target = getattr(child, part)
                    yield _Candidate(operator, child, part, None, target, replacement, fstring or target)
                yield from walk(child, fstring or (child if isinstance(child, ast.JoinedStr) else None))

    yield from walk(tree, None)


def _mutations(node: ast.AST, between, data: bytes, span) -> Iterator[tuple[str, ast.AST, list | None]]:
    """(operator, replacement node, precise edits or None) for each way to mutate `node`."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if type(op) in COMPARE_SWAPS:
                new = copy.copy(node)
                new.ops = list(node.ops)
                new.ops[i] = COMPARE_SWAPS[type(op)]()
                edit = between(operands[i], operands[i + 1], type(op), type(new.ops[i]))
                yield f"Compare {type(op).__name__}->{type(new.ops[i]).__name__}", new, edit and [edit]
    elif isinstance(node, ast.BoolOp):
        new = copy.copy(node)
        new.op = BOOL_SWAPS[type(node.op)]()
        edits = [between(a, b, type(node.op), type(new.op)) for a, b in zip(node.values, node.values[1:])]
        yield f"BoolOp {type(node.op).__name__}->{type(new.op).__name__}", new, None if None in edits else edits
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        start, end = span(node)[0], span(node.operand)[0]
        keyword = re.match(rb"not\s*", data[start:end])
        yield "Not drop", node.operand, keyword and [(start, start + keyword.end(), "")]
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield f"Bool {value}->{not value}", ast.Constant(not value), None
        elif isinstance(value, int):
            for new in (value + 1, value - 1):
                yield f"Int {value}->{new}", ast.Constant(new), None
            for new in _statuses(value):
                yield f"Status {value}->{new}", ast.Constant(new), None
        elif isinstance(value, str) and value:
            start, end = span(node)
            closing = re.search(rb"(\"\"\"|'''|\"|')$", data[start:end])  # X goes before it
            yield (f"Str {_short(value)}", ast.Constant(value + "X"),
                   closing and [(end - len(closing.group()), end - len(closing.group()), "X")])
    elif isinstance(node, ast.BinOp) and type(node.op) in ARITH_SWAPS:
        new = copy.copy(node)
        new.op = ARITH_SWAPS[type(node.op)]()
        edit = between(node.left, node.right, type(node.op), type(new.op))
        yield f"BinOp {type(node.op).__name__}->{type(new.op).__name__}", new, edit and [edit]
    elif isinstance(node, ast.Call) and len(node.args) >= 2 and not any(
            isinstance(a, ast.Starred) for a in node.args[:2]):
        first, second = node.args[:2]
        if ast.dump(first) != ast.dump(second):
            new = copy.copy(node)
            new.args = [second, first, *node.args[2:]]
            (a0, a1), (b0, b1) = span(first), span(second)
            yield ("Args swap", new, [(a0, a1, data[b0:b1].decode("utf-8")),
                                      (b0, b1, data[a0:a1].decode("utf-8"))])
    if isinstance(node, ast.AugAssign) and type(node.op) in ARITH_SWAPS:
        new = copy.copy(node)
        new.op = ARITH_SWAPS[type(node.op)]()
        edit = between(node.target, node.value, type(node.op), type(new.op))
        yield f"AugAssign {type(node.op).__name__}->{type(new.op).__name__}", new, edit and [edit]
    if _removable(node):
        yield f"Remove {type(node).__name__}", ast.Pass(), None


def _removable(node: ast.AST) -> bool:
    """Statements worth removing: those acting on something outside themselves."""
    if isinstance(node, (ast.Expr, ast.Raise, ast.AugAssign, ast.Assert, ast.Delete)):
        return True
    if isinstance(node, ast.Assign):
        return not all(isinstance(t, ast.Name) for t in node.targets)  # a local would only be missed
    return isinstance(node, ast.AnnAssign) and node.value is not None and not isinstance(node.target, ast.Name)


def _statement_mutations(node: ast.AST) -> Iterator[tuple[str, str, ast.AST]]:
    """(operator, field, replacement) for mutations of a statement's expression: return, if."""
    if isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        yield "Return None", "value", ast.Constant(None)
    if isinstance(node, ast.If) and not isinstance(node.test, ast.Constant):
        yield "If True", "test", ast.Constant(True)
        yield "If False", "test", ast.Constant(False)


def _docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _statuses(value: int) -> list[int]:
    """The nearest common HTTP statuses of the same class, below and above, other than value±1."""
    if not 200 <= value <= 599:
        return []
    same = [s for s in COMMON_STATUSES if s // 100 == value // 100 and abs(s - value) > 1]
    below = [s for s in same if s < value]
    above = [s for s in same if s > value]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def _short(value: str) -> str:
    """A string's repr, cut short, with no runs of spaces (ids must not hold two spaces)."""
    text = repr(value[:20]) + ("..." if len(value) > 20 else "")
    return re.sub(r"\s+", " ", text)


def _normal(tree: ast.AST) -> str:
    """A tree's shape, the same for two trees whatever their positions or constructed nodes."""
    return ast.dump(ast.parse(ast.unparse(tree)))


def _splice(candidate: _Candidate, tree: ast.Module, data: bytes, offset) -> str | None:
    """The source with the candidate applied, or None when no splice gives the intended tree.

    The operator's own spelling is replaced when it can be found; otherwise the replaced node
    is unparsed, and parenthesised if its neighbours would otherwise bind it differently. Every
    try is parsed back and kept only if it gives the intended tree: positions inside f-strings,
    for one, are not exact before Python 3.12.
    """
    restore = _swap(candidate.holder, candidate.field, candidate.index, candidate.replacement)
    try:
        expected = _normal(tree)
        place = candidate.place
        start = offset(place.lineno, place.col_offset)
        end = offset(place.end_lineno, place.end_col_offset)
        node = candidate.replacement if place is candidate.target else place
        tries = [] if candidate.precise is None else [candidate.precise]
        tries.append([(start, end, ast.unparse(node))])
        if isinstance(node, ast.expr):
            tries.append([(start, end, f"({ast.unparse(node)})")])
    finally:
        restore()
    for edits in tries:
        text = _apply(data, edits)
        try:
            if _normal(ast.parse(text)) == expected:
                return text
        except SyntaxError:
            continue
    return None


def _swap(holder: ast.AST, name: str, index: int | None, new: ast.AST):
    """Put `new` where the target hangs; return the function that puts the target back."""
    if index is None:
        old = getattr(holder, name)
        setattr(holder, name, new)
        return lambda: setattr(holder, name, old)
    items = getattr(holder, name)
    old = items[index]
    items[index] = new
    return lambda: items.__setitem__(index, old)


def _apply(data: bytes, edits: list[tuple[int, int, str]]) -> str:
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text.encode("utf-8") + data[end:]
    return data.decode("utf-8")


def _changed(old: list[str], new: list[str]) -> tuple[int, str, str]:
    """The first changed line (from 1), and the changed lines before and after, each on one line."""
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1

    def join(lines: list[str]) -> str:
        return " ".join(line.strip() for line in lines if line.strip())

    return head + 1, join(old[head:len(old) - tail]), join(new[head:len(new) - tail])


def natural(text: str) -> tuple:
    """Sort key that puts line 9 before line 10 and ex2 before ex10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def exercises(chapter: str) -> list[str]:
    """The chapter's exercise keys, in order."""
    return sorted({c["exercise"] for c in workspace.checkpoint(chapter)["cells"] if c["exercise"]}, key=natural)


def exercise_mutants(chapter: str, exercise: str) -> list[Mutant]:
    """Every mutant of the solution regions of the Python files an exercise writes."""
    mutants = []
    for cell in workspace.exercise_files(chapter, exercise):
        if cell["path"].endswith(".py"):
            region = solution_lines(cell["starter"], cell["solution"])
            mutants += generate(cell["path"], cell["solution"], region)
    return sorted(mutants, key=lambda m: natural(m.id))


def sample(mutants: list[Mutant], limit: int | None, seed: int, key: str) -> list[Mutant]:
    """At most `limit` of the mutants, the same ones for the same seed and key."""
    if limit is None or limit >= len(mutants):
        return list(mutants)
    chosen = random.Random(f"{seed}/{key}").sample(mutants, limit)  # a str seed is stable across runs
    return sorted(chosen, key=lambda m: natural(m.id))


# --- equivalents -----------------------------------------------------------------------------

ENTRY = re.compile(r"(?P<exercise>ex\d+)\s+(?P<id>\S.*?)\s{2,}#\s*(?P<reason>\S.*)")


def parse_equivalents(text: str, source: str = "equivalents") -> dict[tuple[str, str], str]:
    """{(exercise, mutant id): reason} from lines `ex1  <mutant id>  # reason`."""
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = ENTRY.fullmatch(line.strip())
        if not match:
            raise ValueError(f"{source}:{number}: expected `exN  <mutant id>  # reason`, got {line.strip()!r}")
        key = (match["exercise"], match["id"])
        if key in entries:
            raise ValueError(f"{source}:{number}: {key[0]} {key[1]} is listed twice")
        entries[key] = match["reason"].strip()
    return entries


def load_equivalents(chapter: str, folder: Path = EQUIVALENTS) -> dict[tuple[str, str], str]:
    path = folder / f"{chapter}.txt"
    if not path.exists():
        return {}
    return parse_equivalents(path.read_text(encoding="utf-8"), f"{path.parent.name}/{path.name}")


# --- running ---------------------------------------------------------------------------------

@dataclass
class Run:
    """What the check made of one exercise's mutants."""

    chapter: str
    exercise: str
    mutants: list[Mutant]
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # by mutant id
    notes: dict[str, str] = field(default_factory=dict)  # why a mutant's check was INTERNAL
    equivalents: dict[str, str] = field(default_factory=dict)  # listed ids among all mutants
    stale: list[str] = field(default_factory=list)
    reference: Outcome | None = None  # the check on the unmutated reference: must be PASS

    def _ids(self, wanted) -> list[str]:
        return [m.id for m in self.mutants if wanted(m.id)]

    @property
    def internal(self) -> list[str]:
        return self._ids(lambda i: self.outcomes[i] is Outcome.INTERNAL)

    @property
    def equivalent(self) -> list[str]:
        return self._ids(lambda i: self.outcomes[i] is Outcome.PASS and i in self.equivalents)

    @property
    def survived(self) -> list[str]:
        return self._ids(lambda i: self.outcomes[i] is Outcome.PASS and i not in self.equivalents)

    @property
    def rejected(self) -> list[str]:
        return self._ids(lambda i: self.outcomes[i] not in (Outcome.PASS, Outcome.INTERNAL))


class Progress:
    """`ch01 ex2 37/80` on stderr: rewritten in place on a terminal, a line now and then elsewhere."""

    def __init__(self, stream: TextIO):
        self.stream, self.live = stream, stream.isatty()

    def show(self, chapter: str, exercise: str, done: int, total: int) -> None:
        text = f"ch{chapter[:2]} {exercise} {done}/{total}"
        if self.live:
            self.stream.write("\r\033[K" + text + ("\n" if done == total else ""))
        elif done == total or done % max(1, total // 4) == 0:
            self.stream.write(text + "\n")
        self.stream.flush()


def check(clients: queue.Queue, chapter: str, exercise: str, files: dict[str, str], seed: int,
          tmp: Path, name: str) -> tuple[Outcome, str | None]:
    """Run the exercise's check on a fresh copy of `files`; return its outcome and, if INTERNAL, why."""
    root = tmp / name
    workspace.write_files(root, files)
    client = clients.get()
    try:
        result = client.run(module_name(chapter), exercise, root, seed=seed)
    finally:
        clients.put(client)
        shutil.rmtree(root, ignore_errors=True)
    if result.outcome is Outcome.ERROR and result.message == UNSTARTED:
        return Outcome.INTERNAL, UNSTARTED  # no verdict on the mutant: the server itself failed
    if result.outcome is Outcome.INTERNAL:
        return Outcome.INTERNAL, " ".join((result.message or "no message").split())[:200]
    return result.outcome, None


def run(targets: list[tuple[str, str]], seed: int = 0, jobs: int = 2, limit: int | None = None,
        err: TextIO | None = None) -> list[Run]:
    """Check every (sampled) mutant of each (chapter, exercise), `jobs` checks at a time."""
    progress = Progress(err or sys.stderr)
    clients: queue.Queue = queue.Queue()
    started = [Client() for _ in range(max(1, jobs))]
    for client in started:
        clients.put(client)
    pool = ThreadPoolExecutor(max_workers=len(started))
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="tickethub-mutate-") as tmp:
            for chapter, exercise in targets:
                everything = exercise_mutants(chapter, exercise)
                listed = {i: why for (ex, i), why in load_equivalents(chapter).items() if ex == exercise}
                known = {m.id for m in everything}
                current = Run(chapter, exercise, sample(everything, limit, seed, f"{chapter}/{exercise}"),
                              equivalents={i: why for i, why in listed.items() if i in known},
                              stale=sorted((i for i in listed if i not in known), key=natural))
                base = workspace.files(chapter, "solution")
                # the reference goes first: if it does not PASS, no mutant's outcome means anything
                pending = {pool.submit(check, clients, chapter, exercise, base, seed, Path(tmp), "reference"): None}
                for n, mutant in enumerate(current.mutants):
                    files = {**base, mutant.path: mutant.text}  # a whole fresh project per mutant
                    pending[pool.submit(check, clients, chapter, exercise, files, seed, Path(tmp), str(n))] = mutant
                done = 0
                for future in as_completed(pending):
                    outcome, note = future.result()
                    mutant = pending[future]
                    if mutant is None:
                        current.reference = outcome
                        continue
                    current.outcomes[mutant.id] = outcome
                    if note:
                        current.notes[mutant.id] = note
                    done += 1
                    progress.show(chapter, exercise, done, len(current.mutants))
                if not current.mutants:
                    progress.show(chapter, exercise, 0, 0)
                runs.append(current)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after Ctrl-C, only the checks under way finish
        for client in started:
            client.stop()
    return runs


# --- report ----------------------------------------------------------------------------------

COLUMNS = ("mutants", "rejected", "survived", "equivalent", "internal")


def counts(run_: Run) -> tuple[int, ...]:
    return (len(run_.mutants), len(run_.rejected), len(run_.survived), len(run_.equivalent),
            len(run_.internal))


def render(runs: list[Run]) -> str:
    """The report: per chapter a table, its survivors, internal faults and stale equivalents."""
    out = []
    header = f"  {'exercise':<10}" + "".join(f"{c:>12}" for c in COLUMNS)

    def row(label: str, figures) -> str:
        return f"  {label:<10}" + "".join(f"{n:>12}" for n in figures)

    chapters = sorted({r.chapter for r in runs})
    for chapter in chapters:
        mine = sorted((r for r in runs if r.chapter == chapter), key=lambda r: natural(r.exercise))
        out += [chapter, header]
        out += [row(r.exercise, counts(r)) for r in mine]
        out.append(row("total", [sum(col) for col in zip(*map(counts, mine))]))
        for r in mine:
            if r.reference is not Outcome.PASS:
                out.append(f"  ! {r.exercise}: the unmutated reference gives {r.reference.value}, not PASS:"
                           " its mutants say nothing")
        sections = [
            ("survived (the check PASSes; not listed as equivalent)",
             [(r, i, None) for r in mine for i in r.survived]),
            ("internal (a fault in the check itself)", [(r, i, r.notes.get(i)) for r in mine for i in r.internal]),
        ]
        for title, items in sections:
            if items:
                out += ["", f"  {title}:"]
                for r, mutant_id, note in items:
                    mutant = next(m for m in r.mutants if m.id == mutant_id)
                    out += [f"    {r.exercise}  {mutant.id}", f"        {mutant.description}"]
                    if note:
                        out.append(f"        {note}")
        stale = [(r.exercise, i) for r in mine for i in r.stale]
        if stale:
            out += ["", f"  stale (listed in equivalents/{chapter}.txt, no such mutant):"]
            out += [f"    {exercise}  {mutant_id}" for exercise, mutant_id in stale]
        out.append("")
    if len(chapters) > 1:
        totals = [sum(col) for col in zip(*map(counts, runs))]
        out.append("all chapters: " + ", ".join(f"{n} {c}" for n, c in zip(totals, COLUMNS)))
    return "\n".join(out).rstrip("\n") + "\n"


def failed(runs: list[Run]) -> bool:
    """Does the run call for attention: a lenient check, a faulty one, or a reference not passing?"""
    return any(r.survived or r.internal or r.reference is not Outcome.PASS for r in runs)


def select(chapter: str | None, exercise: str | None) -> list[tuple[str, str]]:
    """The (chapter, exercise) pairs asked for; a chapter may be given by its number alone."""
    names = workspace.chapters()
    if chapter is not None:
        found = [n for n in names if n == chapter or n.startswith(chapter.removeprefix("ch") + "-")]
        if len(found) != 1:
            raise LookupError(f"no chapter {chapter!r}: choose one of {', '.join(names)}")
        names = found
    targets = [(n, e) for n in names for e in exercises(n)]
    if exercise is not None:
        key = exercise if exercise.startswith("ex") else f"ex{exercise}"
        targets = [(n, e) for n, e in targets if e == key]
        if not targets:
            raise LookupError(f"no exercise {exercise!r} in {names[0]}")
    return targets


def mutate(chapter: str | None = None, exercise: str | None = None, seed: int = 0, jobs: int = 2,
           limit: int | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The command: report on stdout, progress on stderr; 1 if any mutant needs attention."""
    started = time.perf_counter()
    out, err = out or sys.stdout, err or sys.stderr  # looked up now: tests and callers redirect them
    try:
        targets = select(chapter, exercise)
        for name in sorted({c for c, _ in targets}):
            load_equivalents(name)  # a malformed file stops the command before any check runs
    except (LookupError, ValueError) as error:
        print(f"mutate: {error}", file=err)
        return 2
    runs = run(targets, seed=seed, jobs=jobs, limit=limit, err=err)
    out.write(render(runs))
    out.write(f"elapsed: {time.perf_counter() - started:.1f} s\n")
    return 1 if failed(runs) else 0
