"""Does `python -m checkers mutate` make the right mutants, read its equivalents, and report truly?"""
import re
import textwrap

import pytest

from checkers.__main__ import main
from checkers.authoring import mutate
from checkers.authoring.mutate import Mutant, Run, generate, parse_equivalents, solution_lines
from checkers.engine import workspace
from checkers.engine.outcomes import Outcome


def mutants(source: str, region: set[int] | None = None) -> dict[str, Mutant]:
    source = textwrap.dedent(source)
    return {m.id: m for m in generate("m.py", source, region)}


def changes(source: str) -> dict[str, str]:
    """{operator: the changed text after} for every mutant of a one-line source."""
    return {m.operator: m.after for m in mutants(source).values()}


@pytest.mark.parametrize(
    ("source", "operator", "after"),
    [
        ("ok = a == b", "Compare Eq->NotEq", "ok = a != b"),
        ("ok = a != b", "Compare NotEq->Eq", "ok = a == b"),
        ("ok = a < b", "Compare Lt->LtE", "ok = a <= b"),
        ("ok = a <= b", "Compare LtE->Lt", "ok = a < b"),
        ("ok = a > b", "Compare Gt->GtE", "ok = a >= b"),
        ("ok = a >= b", "Compare GtE->Gt", "ok = a > b"),
        ("ok = a in b", "Compare In->NotIn", "ok = a not in b"),
        ("ok = a not in b", "Compare NotIn->In", "ok = a in b"),
        ("ok = a is b", "Compare Is->IsNot", "ok = a is not b"),
        ("ok = a is not b", "Compare IsNot->Is", "ok = a is b"),
        ("ok = a and b", "BoolOp And->Or", "ok = a or b"),
        ("ok = a or b or c", "BoolOp Or->And", "ok = a and b and c"),
        ("ok = not a", "Not drop", "ok = a"),
        ("n = 7", "Int 7->8", "n = 8"),
        ("n = 7", "Int 7->6", "n = 6"),
        ("s = 404", "Status 404->401", "s = 401"),
        ("s = 404", "Status 404->409", "s = 409"),
        ("s = 201", "Status 201->204", "s = 204"),
        ("ok = True", "Bool True->False", "ok = False"),
        ("ok = False", "Bool False->True", "ok = True"),
        ("s = 'name'", "Str 'name'", "s = 'nameX'"),
        ('s = """doc"""', "Str 'doc'", 's = """docX"""'),
        ("n = a + b", "BinOp Add->Sub", "n = a - b"),
        ("n = a - b", "BinOp Sub->Add", "n = a + b"),
        ("n = a * b", "BinOp Mult->Div", "n = a / b"),
        ("n = a / b", "BinOp Div->Mult", "n = a * b"),
        ("n += a", "AugAssign Add->Sub", "n -= a"),
        ("db.session.rollback()", "Remove Expr", "pass"),
        ("self.items[k] = v", "Remove Assign", "pass"),
        ("n = max(a, b, c)", "Args swap", "n = max(b, a, c)"),
    ],
)
def test_each_operator_makes_its_mutant(source, operator, after):
    """Does each operator change just what it names, spelt as the reference spells the rest?"""
    assert changes(source)[operator] == after


def test_statement_operators():
    """Do `return X` → `return None` and `if cond:` → `if True:` / `if False:` keep the body as it was?"""
    found = mutants('''
        def f(x):
            if x > 1:  # a comment the mutant keeps
                raise ValueError(x)
            return x * 2
    ''')
    assert found["m.py:f If True"].after == "if True:  # a comment the mutant keeps"
    assert found["m.py:f If False"].after == "if False:  # a comment the mutant keeps"
    assert found["m.py:f Remove Raise"].after == "pass"
    assert found["m.py:f Return None"].description == "return x * 2 → return None"
    assert found["m.py:f Return None"].text.endswith("    return None\n")


def test_unchanged_spelling_and_precedence():
    """Is a mutant's text exactly the reference but for its one change, parenthesised only when needed?"""
    found = mutants('''
        ok = not (a or b) and c
        msg = f"Hi {name}!" if "x" in  y else None
    ''')
    assert found["m.py:<module> Not drop"].after == "ok = (a or b) and c"
    assert found["m.py:<module> BoolOp Or->And"].after == "ok = not (a and b) and c"
    assert found["m.py:<module> Compare In->NotIn"].after == 'msg = f"Hi {name}!" if "x" not in  y else None'
    fstring = [m for m in found.values() if m.operator == "Str 'Hi '"]
    assert len(fstring) == 1 and "Hi X{name}!" in fstring[0].after


def test_multi_line_statement_keeps_every_other_line():
    """When a statement spans lines, are the lines it does not change kept byte for byte?"""
    source = 'total = compute(\n    price,  # unit price\n    quantity * 2,\n)\n'
    found = {m.operator: m for m in generate("m.py", source)}
    assert found["BinOp Mult->Div"].text == source.replace("quantity * 2", "quantity / 2")
    assert found["Args swap"].text == source.replace("price,", "QTY,").replace(
        "quantity * 2,", "price,").replace("QTY,", "quantity * 2,")


def test_lines_outside_the_region_are_never_mutated():
    """Does generation leave the given lines (signatures, headers, other functions) alone?"""
    source = textwrap.dedent('''
        LIMIT = 10


        def f(x, y=3):
            return x + y > LIMIT


        def g(x):
            return x == 1 and not x
    ''')
    region = {6}
    found = list(generate("m.py", source, region))
    assert found and all(m.line == 6 for m in found)
    for m in found:
        before, after = source.split("\n"), m.text.split("\n")
        assert [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b] == [6], m.id


def test_solution_lines_are_what_the_starter_lacks():
    """Are the solution regions exactly the lines the starter replaced by its placeholder?"""
    starter = 'def f():\n    """Doc."""\n    ...  # YOUR CODE HERE\n\n\ndef g():\n    return 1\n'
    solution = 'def f():\n    """Doc."""\n    x = 1\n\n    return x\n\n\ndef g():\n    return 1\n'
    assert solution_lines(starter, solution) == {3, 4, 5}


def test_ids_are_stable_unique_and_deterministic():
    """Do two identical changes in one scope get `#2`, and does every run give the same mutants?"""
    source = "ok = a is None or b is None\n"
    first, second = generate("m.py", source), generate("m.py", source)
    assert [(m.id, m.text) for m in first] == [(m.id, m.text) for m in second]
    ids = [m.id for m in first]
    assert len(ids) == len(set(ids))
    assert {"m.py:<module> Compare Is->IsNot", "m.py:<module> Compare Is->IsNot #2"} <= set(ids)
    assert mutants(source)["m.py:<module> Compare Is->IsNot #2"].after == "ok = a is None or b is not None"


def test_no_mutant_is_identical_or_broken():
    """Are mutants that change nothing (a swap of equal arguments), duplicates or non-compiling ones skipped?"""
    source = "n = pow(a, a)\nx = [y for y in z]\n"
    found = generate("m.py", source)
    assert all(m.operator != "Args swap" for m in found)
    texts = [m.text for m in found]
    assert len(texts) == len(set(texts)) and source not in texts
    for m in found:
        compile(m.text, "m.py", "exec")


def test_docstrings_and_annotations_are_not_mutated():
    """Are strings nothing runs (docstrings, annotations) left out?"""
    found = generate("m.py", 'def f(x: "int") -> "str":\n    """Doc."""\n    return x\n')
    assert [m.operator for m in found] == ["Return None"]


def test_sample_is_deterministic():
    """Does --limit take the same sample for the same seed, sorted like the full list?"""
    every = generate("m.py", "a = 1 + 2 * 3 == 4 or 5 < 6\n")
    picked = mutate.sample(every, 4, 0, "ch/ex1")
    assert picked == mutate.sample(every, 4, 0, "ch/ex1") and len(picked) == 4
    assert [m.id for m in picked] == sorted((m.id for m in picked), key=mutate.natural)
    assert {tuple(m.id for m in mutate.sample(every, 4, s, "ch/ex1")) for s in range(5)} != {tuple(
        m.id for m in picked)}
    assert mutate.sample(every, None, 0, "ch/ex1") == every


def test_equivalents_parser():
    """Are entries read with ids that hold spaces and `#2`, and comments and blank lines skipped?"""
    text = textwrap.dedent('''
        # a comment

        ex1  tickethub/a.py:23 Compare Lt->LtE  # a reason
        ex2  tickethub/b.py:4 Compare Is->IsNot #2   #  the reason # may hold a hash
    ''')
    assert parse_equivalents(text) == {
        ("ex1", "tickethub/a.py:23 Compare Lt->LtE"): "a reason",
        ("ex2", "tickethub/b.py:4 Compare Is->IsNot #2"): "the reason # may hold a hash",
    }


@pytest.mark.parametrize("line", ["ex1  tickethub/a.py:23 Compare Lt->LtE", "tickethub/a.py:23 Int 1->2  # why",
                                  "ex1  a.py:1 Int 1->2  # one\nex1  a.py:1 Int 1->2  # twice"])
def test_equivalents_parser_rejects_bad_lines(line):
    """Is an entry without a reason or an exercise, or listed twice, an error naming its line?"""
    with pytest.raises(ValueError, match=r"equivalents:\d"):
        parse_equivalents(line)


def test_equivalents_files_are_well_formed_and_current():
    """Does every equivalents file belong to a chapter and name mutants that exist?"""
    for path in sorted(mutate.EQUIVALENTS.glob("*.txt")):
        assert path.stem in workspace.chapters(), path.name
        for exercise, mutant_id in mutate.load_equivalents(path.stem):
            known = {m.id for m in mutate.exercise_mutants(path.stem, exercise)}
            assert mutant_id in known, f"{path.name}: {exercise} {mutant_id} is stale"


def test_report_counts_and_exit_status():
    """Does the report count each outcome once, list survivors and stale entries, and fail only when it should?"""
    made = generate("m.py", "n = a + 1 * b\n")
    run = Run("01-x", "ex1", made, reference=Outcome.PASS,
              equivalents={made[1].id: "why"}, stale=["m.py:9 Int 1->2"])
    run.outcomes = {made[0].id: Outcome.PASS, made[1].id: Outcome.PASS, made[2].id: Outcome.FAIL,
                    made[3].id: Outcome.TIMEOUT}
    text = mutate.render([run])
    assert re.search(r"total\s+4\s+2\s+1\s+1\s+0\n", text), text
    assert made[0].id in text and made[0].description in text and made[1].id not in text
    assert "stale" in text and "m.py:9 Int 1->2" in text
    assert mutate.failed([run])
    run.outcomes[made[0].id] = Outcome.ERROR
    assert not mutate.failed([run])
    run.outcomes[made[0].id] = Outcome.INTERNAL
    assert mutate.failed([run]) and "internal" in mutate.render([run])


def test_end_to_end_on_chapter_00(capsys):
    """Does a small real run add up, keep progress off stdout, and exit 1 exactly when something survives?"""
    status = main(["mutate", "00-welcome", "--limit", "6", "--seed", "3"])
    out, err = capsys.readouterr()
    figures = re.search(r"^  total" + r"\s+(\d+)" * 5 + "$", out, re.M)
    assert figures, out
    total, rejected, survived, equivalent, internal = map(int, figures.groups())
    assert total == 6 == rejected + survived + equivalent + internal
    assert status == (1 if survived or internal else 0)
    assert "ch00 ex1 6/6" in err and "ch00" not in out
    assert out.splitlines()[-1].startswith("elapsed: ")
    assert "elapsed" not in "\n".join(out.splitlines()[:-1])


def test_unknown_chapter_is_refused(capsys):
    """Does a chapter that does not exist stop the command with status 2, before any check?"""
    assert main(["mutate", "99-nothing"]) == 2
    assert "no chapter" in capsys.readouterr().err


def test_ids_survive_edits_elsewhere_in_the_file():
    """Is a mutant named by its function, so lines added above it keep its id (and the equivalents list valid)?"""
    body = "def f(x):\n    return x > 1\n"
    before = {m.id for m in generate("m.py", body)}
    after = {m.id for m in generate("m.py", "import os\n\n\n" + body)}
    assert before == after and "m.py:f Compare Gt->GtE" in before
