"""What the chapters' checks share: building the learner's app, numbers, given code.

Helpers here run in the judge (they receive `t`) unless marked `@probe`, which run in the
learner's process beside the learner's code.
"""
from __future__ import annotations

from flask import Flask

from ..engine.judge import show


def number(value) -> bool:
    """Is `value` a real number of JSON's kind (an `int` or a `float`, not a `bool`)?"""
    return type(value) in (int, float)


def app_from_factory(t, config: dict | None = None):
    """`tickethub.create_app(config)`, checked to be a Flask app; the app, as a handle."""
    create_app = t.get(t.module("tickethub"), "create_app")
    t.require(getattr(create_app, "is_callable", False), "a function `create_app` in `tickethub/__init__.py`",
              lambda: f"`create_app` is {show(create_app)}",
              "Did you keep the line `def create_app(test_config=None):`?")
    app = create_app(config) if config is not None else create_app()
    t.require(t.isa(app, Flask), "`create_app()` returns a Flask app", lambda: f"it returned {show(app)}",
              "Does `create_app` end with `return app`?")
    return app
