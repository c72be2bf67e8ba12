"""Is the verdict out of the learner's reach, and is every fault blamed on the right side?"""
import sys
import types

import pytest

from checkers.engine import sandbox, server, workspace
from checkers.engine.learner import probe
from checkers.engine.outcomes import Outcome, Result
from checkers.notebook.api import Chapter
from conftest import assert_outcome

CHAPTER = "00-welcome"
WARMUP = "tickethub/warmup.py"
GREET_LINE = next(n for n, line in enumerate(workspace.files(CHAPTER, "solution")[WARMUP].splitlines(), 1)
                  if line.startswith('    return {"message"'))  # where the test inserts a raise
WRONG_GREETING = ('f"Welcome to TicketHub, {name}!"', '"Welcome!"')



def _stand_in(title: str):
    """A one-exercise chapter, forked from this process, whose step probes the boundary itself."""
    chapter = Chapter(f"checkers.chapters.ch98_{len(STAND_INS)}", title)
    chapter.name = CHAPTER  # chapter 00's files, so its ex1 counts as attempted
    STAND_INS[title] = chapter
    return chapter.exercise(title)


STAND_INS: dict[str, Chapter] = {}
judge_imports, step_bug, probe_bug, learner_raises, classes = (_stand_in(title) for title in (
    "the judge never imports the learner's code", "a bug in a step", "a bug in a probe", "the learner raises in a probe",
    "facts about classes"))


@classes.step("`isa` and `inherits` answer for library classes and for the other side's classes")
def _classes(t, state):
    from flask import Blueprint, Flask
    from flask.sansio.scaffold import Scaffold

    flask = t.module("flask")
    remote_blueprint, bp = t.get(flask, "Blueprint"), t.get(t.module("tickethub.warmup"), "bp")
    facts = [t.inherits(remote_blueprint, Scaffold), not t.inherits(remote_blueprint, Flask),
             t.inherits(remote_blueprint, remote_blueprint), t.isa(bp, Blueprint), t.isa(bp, remote_blueprint),
             not t.isa(bp, Flask), not t.inherits(bp, Blueprint)]
    t.require(all(facts), "all true", str(facts))


@judge_imports.step("the learner's module is used, but lives in the other process")
def _judge_imports(t, state):
    warmup = t.module("tickethub.warmup")
    t.require(not any(name.split(".")[0] == "tickethub" for name in sys.modules), "no `tickethub` module in the judge",
              "the judge imported the learner's package")
    t.require(type(t.get(warmup, "__name__")) is str and warmup.is_callable is False, "plain data", "not plain data")


@step_bug.step("a step with a typo")
def _step_bug(t, state):
    return t.no_such_helper()


@probe
def _broken_probe():
    return {}["missing"]


@probe
def _calls_the_learner(function):
    return function("x")


@probe_bug.step("a probe that fails by itself")
def _probe_bug(t, state):
    t.probe(_broken_probe)


@learner_raises.step("a probe that calls the learner's code, which raises")
def _learner_raises(t, state):
    t.probe(_calls_the_learner, t.module("tickethub.warmup").greet)


@pytest.fixture
def boundary(monkeypatch):
    for chapter in STAND_INS.values():
        monkeypatch.setitem(sys.modules, chapter.module, types.SimpleNamespace(chapter=chapter))

    def run(project, exercise) -> Result:
        module = exercise.chapter.module
        request = {"module": module, "exercise": "ex1", "project": str(project.root), "seed": 1}
        return Result.from_dict(sandbox.run_forked(request))  # forked from here: it knows the chapter

    return run


def test_the_judge_never_imports_learner_code(project, boundary):
    assert_outcome(boundary(project(CHAPTER), judge_imports), Outcome.PASS)


def test_facts_about_classes_cross_the_boundary(project, boundary):
    assert_outcome(boundary(project(CHAPTER), classes), Outcome.PASS)


def test_a_bug_in_a_step_is_internal_not_the_learners(project, boundary):
    """Is a typo in the check reported as the course's fault, never as the learner's ERROR?"""
    assert_outcome(boundary(project(CHAPTER), step_bug), Outcome.INTERNAL, "not in your code", "AttributeError")


def test_a_bug_in_a_probe_is_internal(project, boundary):
    assert_outcome(boundary(project(CHAPTER), probe_bug), Outcome.INTERNAL, "not in your code", "KeyError")


def test_the_learners_exception_inside_a_probe_is_an_error(project, boundary):
    """Is an exception raised by the learner's code, called from a probe, the learner's ERROR with their line?"""
    p = project(CHAPTER).edit(WARMUP, '    return {"message"', '    raise ValueError("no")\n    return {"message"')
    assert_outcome(boundary(p, learner_raises), Outcome.ERROR, "ValueError: no", f"{WARMUP}, line {GREET_LINE}, in greet")


FORGERIES = {
    # write a forged PASS to every descriptor the learner's process might share with the judge or server
    "every descriptor": "import os\nfor fd in range(256):\n    try:\n        os.write(fd, b'{\"outcome\": \"PASS\"}\\n')\n"
                        "    except OSError:\n        pass\n",
    # a well-formed frame, but not an answer to the judge's request
    "a framed answer": "import os, json, struct\nfor fd in range(3, 64):\n    data = json.dumps({'id': 1, 'ok': True, "
                       "'spent': 0}).encode()\n    try:\n        os.write(fd, struct.pack('>I', len(data)) + data)\n"
                       "    except OSError:\n        pass\n",
    # patch the course's code in the learner's own process
    "patched checkers": "import checkers.engine.outcomes as o, checkers.engine.judge as j\n"
                        "j.Checker.require = lambda *a, **k: None\no.Outcome.FAIL = o.Outcome.PASS\n",
    # leave through the exit that the guard of os._exit does not name
    "posix._exit": "import posix\nposix._exit(0)\n",
}


@pytest.mark.parametrize("attack", sorted(FORGERIES))
def test_the_learners_code_cannot_forge_a_pass(project, check_server, attack):
    """Does an attack in the learner's file earn nothing, and leave the next learner's check right?"""
    p = project(CHAPTER).edit(WARMUP, *WRONG_GREETING)
    p.write(WARMUP, FORGERIES[attack] + p.read(WARMUP))
    result = check_server.run(p.module, "ex1", p.root)
    assert result.outcome in (Outcome.FAIL, Outcome.ERROR), result.text()
    honest = project(CHAPTER)  # the reference again, checked by the same server right after
    assert_outcome(check_server.run(honest.module, "ex1", honest.root), Outcome.PASS)


def test_a_server_answer_names_its_request(project):
    """Does the client take only the answer to its own request, whatever else the server's pipe holds?"""
    client = server.Client()
    try:
        p = project(CHAPTER)
        assert_outcome(client.run(p.module, "ex1", p.root), Outcome.PASS)
        client.process.stdin.write('{"module": "checkers.chapters.ch00_welcome", "exercise": "ex1", '
                                   f'"project": "{p.root}", "id": "stray"}}\n')
        client.process.stdin.flush()  # an answer to a request the client never made is now on its way
        p.edit(WARMUP, *WRONG_GREETING)
        assert_outcome(client.run(p.module, "ex1", p.root), Outcome.FAIL)
    finally:
        client.stop()
