"""What the data chapters' checks share: a TicketHub app on the check's own database."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from .checking import speed_up

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
