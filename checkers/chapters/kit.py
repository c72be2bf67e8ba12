"""What the chapters' checks share: building the learner's app, numbers, given code.

Helpers here run in the judge (they receive `t`) unless marked `@probe`, which run in the
learner's process beside the learner's code.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from ..engine.databases import speed_up
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


# --- legacy: the data chapters' checks before the judge/learner boundary --------------------

# where create_app() mounts each feature's blueprint
PREFIXES = {"events": "/api/events", "venues": "/api/venues", "bookings": "/api", "reports": "/api/reports"}


def app_on_check_database(t, *features: str) -> Flask:
    """An app on this check's own empty database, with the learner's `db`, models and these blueprints.

    Built the way `create_app()` builds one, minus what the check does not need (fewer routes
    make a faster check), and with settings of its own, so that a mistake in another
    exercise's file (the config classes, say) does not show up here. Leaves on `t`: `app`,
    `client`, `db`, `engine`, the models `Venue`, `Event`, `Booking`, and `peek`, a separate
    connection that sees only what was committed.
    """
    app = Flask("tickethub")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=t.database_url(), MAX_TICKETS_PER_ORDER=10)
    database = t.module("tickethub.db")
    database.init_db(app)
    t.db = database.db
    for feature in features:
        app.register_blueprint(t.module(f"tickethub.{feature}").bp, url_prefix=PREFIXES[feature])
    if features:
        t.module("tickethub.errors").register_error_handlers(app)
    models = t.module("tickethub.models")
    t.Venue, t.Event, t.Booking = (getattr(models, name, None) for name in ("Venue", "Event", "Booking"))
    with app.app_context():
        t.engine = t.db.engine
        speed_up(t.engine)
        t.db.create_all()
    t.app, t.client = app, app.test_client()
    t.peek = sa.create_engine(t.database_url())
    speed_up(t.peek)
    return app
