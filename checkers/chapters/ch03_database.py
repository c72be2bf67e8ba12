"""Checks for chapter 03: database (models, CRUD, pagination, conflicts, transactions, pooling).

Every check gets its own empty database from `t.database_url()`: an SQLite file in the
check's scratch folder, or, when DATABASE_URL names PostgreSQL, a private schema there. So the
same checks hold on both, and they never write into the learner's project.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import flask_sqlalchemy  # noqa: F401  (imported before the check server forks: checks start warm)
import sqlalchemy as sa
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401
from flask import Flask, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkzeug.exceptions import HTTPException

from ..engine.checking import raised, show, speed_up
from .kit import app_on_check_database
from ..notebook.api import Chapter

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "Database", legacy=True)

MODELS = "tickethub/models.py"
LEAKS = ("insert into", "constraint failed", "duplicate key value", "sqlalchemy", "sqlite",
         "psycopg", "venues.name", "uq_venues", "background on this error")


# --- exercise 1: models -------------------------------------------------------------------------

ex1 = chapter.exercise(
    "Typed models and relationships",
    hints=[
        "Each column is one line in the class: `name: Mapped[str] = mapped_column(String(120))`. "
        "The annotation says the Python type *and* whether the column may be empty: `Mapped[int]` "
        "is `NOT NULL`, `Mapped[int | None]` may be `NULL`. A plain `capacity: Mapped[int]` needs no "
        "`mapped_column()` at all.",
        "A foreign key is a column: `venue_id: Mapped[int | None] = mapped_column(ForeignKey(\"venues.id\"))`. "
        "The relationship beside it gives you objects instead of ids: `venue: Mapped[Venue | None] = "
        "relationship(back_populates=\"events\")`, and in `Venue`, `events: Mapped[list[\"Event\"]] = "
        "relationship(back_populates=\"venue\")`. Each side names the *other* side's attribute.",
        "`unique=True` on `Venue.name`. In `Booking`, the pair must be unique, not the email alone: "
        "`__table_args__ = (UniqueConstraint(\"event_id\", \"email\"),)`. In `Event`: "
        "`__table_args__ = (CheckConstraint(\"seats_left >= 0\", name=\"seats_left_not_negative\"),)`, and "
        "`bookings: Mapped[list[\"Booking\"]] = relationship(back_populates=\"event\", cascade=\"all, delete-orphan\")` "
        "so that deleting an event deletes its bookings.",
    ],
)

# (model, column, python type, length, nullable, foreign key)
COLUMNS = [
    ("Venue", "name", str, 120, False, None),
    ("Venue", "city", str, 80, False, None),
    ("Venue", "capacity", int, None, False, None),
    ("Event", "name", str, 200, False, None),
    ("Event", "capacity", int, None, False, None),
    ("Event", "seats_left", int, None, False, None),
    ("Event", "venue_id", int, None, True, "venues.id"),
    ("Booking", "event_id", int, None, False, "events.id"),
    ("Booking", "email", str, 254, False, None),
    ("Booking", "seats", int, None, False, None),
]
# (model, attribute, other model, a list?, the other side's attribute)
RELATIONSHIPS = [
    ("Venue", "events", "Event", True, "venue"),
    ("Event", "venue", "Venue", False, "events"),
    ("Event", "bookings", "Booking", True, "event"),
    ("Booking", "event", "Event", False, "bookings"),
]


def _needs_models(t, *attributes: str) -> None:
    """Fail early, and say so, when exercise 1's models lack what this exercise builds on."""
    models = t.module("tickethub.models")
    for attribute in attributes:
        model, name = attribute.split(".")
        cls = getattr(models, model, None)
        try:
            mapped = name in sa.inspect(cls).attrs
        except Exception:  # noqa: BLE001 — not a mapped class at all
            mapped = False
        t.require(
            mapped,
            f"`{attribute}` from exercise 1 (this exercise builds on the models)",
            f"`{model}` has no mapped attribute `{name}`",
            "Is exercise 1 solved? Run `ex1.check()`: it says what is missing.",
        )


def _rows(t, model, **where) -> list[dict]:
    """Read committed rows of a model's table through the check's own connection."""
    table = model.__table__
    statement = sa.select(table).order_by(table.c.id)
    for name, value in where.items():
        statement = statement.where(table.c[name] == value)
    with t.peek.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(statement)]


def _one(t, model, id_):
    rows = _rows(t, model, id=id_)
    return rows[0] if rows else None


def _write(t, statement) -> None:
    """Change the database through the check's own connection, and commit."""
    with t.peek.begin() as connection:
        connection.execute(statement)


def _models(t):
    models = t.module("tickethub.models")
    return models.Venue, models.Event, models.Booking


def _email(t) -> str:
    return f"{t.word()}.{t.word()}@example.com"


def _venue(t, **fields):
    Venue = _models(t)[0]
    values = {"name": t.word("Hall ").title() + f" {t.rng.randrange(10**6)}", "city": t.word().title(),
              "capacity": t.rng.randrange(100, 5000)}
    values.update(fields)
    with t.peek.begin() as connection:
        return connection.execute(sa.insert(Venue.__table__).values(**values)).inserted_primary_key[0]


def _event(t, **fields):
    Event = _models(t)[1]
    capacity = fields.pop("capacity", t.rng.randrange(20, 90))
    values = {"name": t.word("Gig ").title(), "capacity": capacity, "seats_left": capacity, "venue_id": None}
    values.update(fields)
    with t.peek.begin() as connection:
        return connection.execute(sa.insert(Event.__table__).values(**values)).inserted_primary_key[0]


def _name(error) -> str:
    return "no error" if error is None else f"`{type(error).__name__}`"


@ex1.step("`tickethub/models.py` defines `Venue`, `Event` and `Booking` on `db.Model`")
def _classes(t):
    models = t.module("tickethub.models")
    db = t.module("tickethub.db").db
    for name in ("Venue", "Event", "Booking"):
        cls = getattr(models, name, None)
        t.require(
            isinstance(cls, type) and issubclass(cls, db.Model),
            f"a model class `{name}(db.Model)` in `{MODELS}`",
            f"`{name}` is {show(cls)}",
            f"Did you keep the line `class {name}(db.Model):`?",
        )
    t.models = models


@ex1.step("each model has its columns, with the right types, lengths and `NOT NULL`s")
def _columns(t):
    for model, column, kind, length, nullable, _ in COLUMNS:
        table = getattr(t.models, model).__table__
        col = table.c.get(column)
        t.require(col is not None, f"a column `{model}.{column}`", f"`{table.name}` has the columns "
                  f"{', '.join(f'`{c.name}`' for c in table.c)}",
                  f"Did you add `{column}: Mapped[...]` to `{model}`, spelled exactly so?")
        try:
            python_type = col.type.python_type
        except NotImplementedError:
            python_type = None
        t.require(
            python_type is kind,
            f"`{model}.{column}` holds a `{kind.__name__}`",
            f"it is a `{col.type!r}` column",
            f"Is it annotated `Mapped[{kind.__name__}{' | None' if nullable else ''}]`?",
        )
        if length is not None:
            t.require(
                getattr(col.type, "length", None) == length,
                f"`{model}.{column}` is `String({length})`",
                f"it is `{col.type!r}`",
                f"Did you write `mapped_column(String({length}))`? The length is part of the table's design "
                "(and PostgreSQL enforces it).",
            )
        t.require(
            col.nullable is nullable,
            f"`{model}.{column}` is {'optional (may be NULL)' if nullable else 'required (NOT NULL)'}",
            f"it is {'optional' if col.nullable else 'required'}",
            f"`Mapped[{kind.__name__}]` makes a column required, `Mapped[{kind.__name__} | None]` optional: "
            "which did you write?",
        )


@ex1.step("`Event.venue_id` refers to `venues.id`, and `Booking.event_id` to `events.id`")
def _foreign_keys(t):
    for model, column, _, _, _, target in COLUMNS:
        if target is None:
            continue
        col = getattr(t.models, model).__table__.c[column]
        targets = sorted(fk.target_fullname for fk in col.foreign_keys)
        t.require(
            targets == [target],
            f"`{model}.{column}` is a foreign key to `{target}`",
            f"its foreign keys are {show(targets)}",
            f"Did you write `mapped_column(ForeignKey(\"{target}\"))`? (Table name, a dot, column name.)",
        )


@ex1.step("the relationships `Venue.events` ↔ `Event.venue` and `Event.bookings` ↔ `Booking.event` go both ways")
def _relationships(t):
    for model, attribute, other, many, back in RELATIONSHIPS:
        cls, other_cls = getattr(t.models, model), getattr(t.models, other)
        annotation = f'list["{other}"]' if many else other
        relationship = sa.inspect(cls).relationships.get(attribute)
        t.require(
            relationship is not None and relationship.mapper.class_ is other_cls,
            f"a relationship `{model}.{attribute}` to `{other}`",
            f"`{model}.{attribute}` is missing" if relationship is None
            else f"`{model}.{attribute}` leads to `{relationship.mapper.class_.__name__}`",
            f"Did you add `{attribute}: Mapped[{annotation}] = relationship(back_populates=\"{back}\")` to `{model}`?",
        )
        t.require(
            relationship.uselist is many,
            f"`{model}.{attribute}` is {'a list of' if many else 'one'} `{other}`",
            f"it is {'a list' if relationship.uselist else 'a single object'}",
            f"Is the annotation `Mapped[list[\"{other}\"]]` (many) or `Mapped[{other}]` (one)?",
        )
    Venue, Event, Booking = _models(t)
    venue, event, booking = Venue(), Event(), Booking()
    event.venue = venue
    booking.event = event
    t.require(
        venue.events == [event] and event.bookings == [booking],
        "setting `event.venue = venue` adds the event to `venue.events` (and the same for bookings)",
        f"`venue.events` is {show(venue.events)} and `event.bookings` is {show(event.bookings)}",
        "Does each side of a pair name the other in `back_populates`? `Event.venue` has "
        "`back_populates=\"events\"` and `Venue.events` has `back_populates=\"venue\"`.",
    )


@ex1.step("a venue with events and bookings can be saved and read back")
def _round_trip(t):
    app_on_check_database(t)
    Venue, Event, Booking = _models(t)
    db = t.db
    names = [t.word("Show ").title() for _ in range(2)]
    capacities = [t.rng.randrange(10, 400) for _ in names]
    email = _email(t)
    with t.app.app_context():
        venue = Venue(name=t.word("Hall ").title(), city=t.word().title(), capacity=t.rng.randrange(500, 3000))
        venue.events = [Event(name=n, capacity=c, seats_left=c) for n, c in zip(names, capacities)]
        venue.events[0].bookings.append(Booking(email=email, seats=2))
        db.session.add(venue)
        db.session.commit()
        venue_id = venue.id
    with t.app.app_context():
        venue = db.session.get(Venue, venue_id)
        events = sorted(venue.events, key=lambda e: e.id)
        seen = [(e.name, e.capacity, e.venue_id) for e in events]
        wanted = [(n, c, venue_id) for n, c in zip(names, capacities)]
        t.require(seen == wanted, f"`venue.events` read back as {show(wanted)} (name, capacity, venue_id)",
                  show(seen), "Do `Event.venue_id` and the relationships point at each other as asked?")
        t.require(type(venue.id) is int and type(events[0].capacity) is int,
                  "ids and capacities come back as `int`", f"{show(venue.id)}, {show(events[0].capacity)}",
                  "Are the columns annotated `Mapped[int]`?")
        bookings = [(b.email, b.seats, b.event_id) for b in events[0].bookings]
        t.require(bookings == [(email, 2, events[0].id)], f"`event.bookings` read back as {show([(email, 2, events[0].id)])}",
                  show(bookings), "Does `Booking.event_id` refer to `events.id`, with `Event.bookings` and `Booking.event` paired?")
    t.venue_id, t.event_ids, t.email = venue_id, [e.id for e in events], email


def _violates(t, *objects) -> BaseException | None:
    """Try to save `objects`; return the error the database raised (after a rollback), or None."""
    db = t.db
    with t.app.app_context():
        db.session.add_all(objects)
        try:
            db.session.commit()
        except IntegrityError as error:
            db.session.rollback()
            return error
    return None


@ex1.step("the database refuses a second venue with the same name, and a second booking by one email at one event")
def _unique(t):
    Venue, Event, Booking = _models(t)
    with t.app.app_context():
        name = t.db.session.get(Venue, t.venue_id).name
    error = _violates(t, Venue(name=name, city=t.word().title(), capacity=100))
    t.require(isinstance(error, IntegrityError), f"`IntegrityError` when a second venue is named {name!r}",
              f"{_name(error)}: the database stored both", "Did you pass `unique=True` to `mapped_column()` for `Venue.name`?")
    error = _violates(t, Booking(event_id=t.event_ids[0], email=t.email, seats=1))
    t.require(isinstance(error, IntegrityError), f"`IntegrityError` when {t.email} books event {t.event_ids[0]} twice",
              f"{_name(error)}: the database stored both",
              "Did you add `__table_args__ = (UniqueConstraint(\"event_id\", \"email\"),)` to `Booking`?")
    error = _violates(t, Booking(event_id=t.event_ids[1], email=t.email, seats=1))
    t.require(error is None, f"{t.email} may book another event (the *pair* of event and email is unique)",
              f"`IntegrityError`: {show(str(getattr(error, 'orig', error)))}",
              "Is the email unique on its own (`unique=True` on `email`)? Only the pair "
              "`UniqueConstraint(\"event_id\", \"email\")` should be.")


@ex1.step("the database refuses a negative `seats_left`")
def _check_constraint(t):
    Event = _models(t)[1]
    table = Event.__table__
    with t.peek.connect() as connection:
        try:
            connection.execute(sa.update(table).where(table.c.id == t.event_ids[0]).values(seats_left=-1))
            connection.commit()
            error = None
        except IntegrityError as failure:
            connection.rollback()
            error = failure
    t.require(
        isinstance(error, IntegrityError),
        "`IntegrityError` when an event's `seats_left` is set to -1",
        f"{_name(error)}: the database stored -1",
        "Did you add `__table_args__ = (CheckConstraint(\"seats_left >= 0\", name=\"seats_left_not_negative\"),)` "
        "to `Event`? It is the last line of defence against overbooking.",
    )


@ex1.step("deleting an event deletes its bookings")
def _cascade(t):
    Venue, Event, Booking = _models(t)
    event_id = t.event_ids[0]
    with t.app.app_context():
        try:
            t.db.session.delete(t.db.session.get(Event, event_id))
            t.db.session.commit()
            error = None
        except IntegrityError as failure:
            t.db.session.rollback()
            error = failure
    t.require(
        error is None and _rows(t, Booking, event_id=event_id) == [] and _one(t, Event, event_id) is None,
        f"event {event_id} and its booking are gone after `db.session.delete(event)`",
        "`IntegrityError`: SQLAlchemy tried to keep the bookings and empty their `event_id`" if error
        else f"bookings left behind: {show(_rows(t, Booking, event_id=event_id))}",
        "Does `Event.bookings` have `cascade=\"all, delete-orphan\"`? A booking makes no sense without its event.",
    )


# --- exercise 2: the event service ----------------------------------------------------------------

ex2 = chapter.exercise(
    "Events in the database: create, read, update, delete",
    hints=[
        "Each function does its work through `db.session`: `db.session.get(Event, event_id)` reads one "
        "row by primary key (or gives `None`); `db.session.add(event)` plus `db.session.commit()` "
        "saves; `db.session.delete(event)` plus `db.session.commit()` deletes. Nothing is saved "
        "until `commit()`.",
        "`events_query()` only *builds* a statement, it does not run it: `return db.select(Event).order_by(Event.id)`. "
        "`get_event` raises `EventNotFound(event_id)` when `db.session.get(...)` gives `None`, and the others "
        "use `get_event` to find their event. A new event has every seat free: `Event(seats_left=fields[\"capacity\"], **fields)`.",
        "In `update_event`, the seats already booked are `event.capacity - event.seats_left`. If the new capacity "
        "is smaller, `raise InvalidEvent({\"capacity\": \"...\"})`; otherwise `event.seats_left = new_capacity - booked`. "
        "Then `setattr(event, name, value)` for each field, and `db.session.commit()`. `delete_event` is "
        "`db.session.delete(get_event(event_id))` and a commit.",
    ],
)

SERVICES = "tickethub/events/services.py"


def _event_service(t):
    services = t.module("tickethub.events.services")
    for name in ("events_query", "get_event", "create_event", "update_event", "delete_event"):
        t.require(callable(getattr(services, name, None)), f"a function `{name}` in `{SERVICES}`",
                  f"`{name}` is {show(getattr(services, name, None))}", f"Did you keep the line `def {name}(...):`?")
    return services


@ex2.step("`create_event(data)` stores a new event, with every seat free, and returns it")
def _create(t):
    t.services = _event_service(t)
    _needs_models(t, "Event.name", "Event.capacity", "Event.seats_left", "Event.venue_id", "Event.bookings",
                  "Venue.name", "Booking.event_id", "Booking.email", "Booking.seats")
    app_on_check_database(t, "events")
    Event = _models(t)[1]
    t.venue = _venue(t)
    data = {"name": t.word("Festival ").title(), "capacity": t.rng.randrange(50, 900), "venue_id": t.venue}
    with t.app.app_context():
        event = t.services.create_event(dict(data))
        t.require(isinstance(event, Event), f"`create_event({data})` returns the new `Event`", f"it returned {show(event)}",
                  "Do you `return event` at the end?")
        event_id = event.id
    row = _one(t, Event, event_id) if type(event_id) is int else None
    t.require(row is not None, f"event {event_id} is in the database once `create_event` returns",
              "it is not there (seen from another connection)",
              "Did you `db.session.add(event)` and then `db.session.commit()`? Until `commit()`, only your own "
              "session can see the new row, and it is thrown away at the end of the request.")
    wanted = {"name": data["name"], "capacity": data["capacity"], "seats_left": data["capacity"], "venue_id": t.venue}
    seen = {k: row[k] for k in wanted}
    t.require(seen == wanted, f"the stored event is {show(wanted)}", show(seen),
              "Does a new event start with `seats_left` equal to its `capacity`?")
    t.event_id, t.data = event_id, data


@ex2.step("`get_event(event_id)` returns the event, and raises `EventNotFound` for an unknown id")
def _get(t):
    missing = t.rng.randrange(10**6, 10**7)
    with t.app.app_context():
        event = t.services.get_event(t.event_id)
        t.require(getattr(event, "id", None) == t.event_id and getattr(event, "name", None) == t.data["name"],
                  f"`get_event({t.event_id})` returns the `Event` named {t.data['name']!r}", f"it returned {show(event)}",
                  "Do you return `db.session.get(Event, event_id)`?")
        error = raised(lambda: t.services.get_event(missing))
    t.require(isinstance(error, t.services.EventNotFound), f"`get_event({missing})` raises `EventNotFound`",
              f"{_name(error)}", "`db.session.get()` gives `None` for an unknown id: do you then "
              "`raise EventNotFound(event_id)`?")


@ex2.step("`events_query()` returns a `select` of every event in id order")
def _query(t):
    Event = _models(t)[1]
    more = [_event(t, name=t.word("Talk ").title()) for _ in range(t.rng.randrange(2, 5))]
    with t.app.app_context():
        statement = t.services.events_query()
        t.require(isinstance(statement, sa.Select), "`events_query()` returns a statement, `db.select(Event)…`",
                  f"it returned {show(statement)}",
                  "Do you `return db.select(Event).order_by(Event.id)`, without running it? The list endpoint "
                  "runs it one page at a time.")
        ids = [getattr(e, "id", e) for e in t.db.session.execute(statement).scalars()]
    wanted = sorted([t.event_id, *more])
    t.require(ids == wanted, f"running it gives the events {wanted}", f"it gave {show(ids)}",
              "Does it select `Event` rows (`db.select(Event)`) with no `where()` filter?")
    sql = str(statement.compile(dialect=t.peek.dialect))
    t.require("ORDER BY" in sql, "the statement has an `ORDER BY`", f"`{' '.join(sql.split())[:120]}`",
              "Did you add `.order_by(Event.id)`? Without it the database may return rows in any order "
              "(PostgreSQL does, after updates), and pages would overlap or skip events.")


@ex2.step("`update_event` changes the name and capacity, keeping booked seats booked")
def _update(t):
    Event, Booking = _models(t)[1:]
    capacity, booked = t.rng.randrange(30, 80), t.rng.randrange(5, 20)
    event_id = _event(t, capacity=capacity, seats_left=capacity - booked)
    _write(t, sa.insert(Booking.__table__).values(event_id=event_id, email=_email(t), seats=booked))
    name = t.word("Renamed ").title()
    with t.app.app_context():
        t.services.update_event(event_id, {"name": name})
    row = _one(t, Event, event_id)
    t.require(row["name"] == name and row["capacity"] == capacity,
              f"after `update_event({event_id}, {{\"name\": {name!r}}})`, the stored name is {name!r} and the capacity still {capacity}",
              f"name {show(row['name'])}, capacity {show(row['capacity'])}",
              "Do you change only the fields that were sent, and `db.session.commit()`?")
    bigger = capacity + t.rng.randrange(5, 50)
    with t.app.app_context():
        t.services.update_event(event_id, {"capacity": bigger})
    row = _one(t, Event, event_id)
    t.require(
        (row["capacity"], row["seats_left"]) == (bigger, bigger - booked),
        f"with {booked} of {capacity} seats booked, a new capacity of {bigger} leaves {bigger - booked} seats",
        f"capacity {show(row['capacity'])}, `seats_left` {show(row['seats_left'])}",
        "Booked seats are `capacity - seats_left`; did you set `seats_left = new_capacity - booked`?",
    )
    smaller = t.rng.randrange(1, booked)
    with t.app.app_context():
        error = raised(lambda: t.services.update_event(event_id, {"capacity": smaller}))
    row = _one(t, Event, event_id)
    t.require(
        isinstance(error, t.services.InvalidEvent) and row["capacity"] == bigger,
        f"`InvalidEvent` for a capacity of {smaller} when {booked} seats are booked, and nothing changes",
        f"{_name(error)}; the stored capacity is {show(row['capacity'])}",
        "Do you `raise InvalidEvent({\"capacity\": ...})` when the new capacity is below the seats booked, "
        "before changing anything?",
    )
    missing = t.rng.randrange(10**6, 10**7)
    with t.app.app_context():
        error = raised(lambda: t.services.update_event(missing, {"name": name}))
    t.require(isinstance(error, t.services.EventNotFound), f"`update_event({missing}, ...)` raises `EventNotFound`",
              _name(error), "Do you find the event with `get_event(event_id)`?")


@ex2.step("`delete_event` deletes the event and its bookings")
def _delete(t):
    Event, Booking = _models(t)[1:]
    event_id = _event(t)
    _write(t, sa.insert(Booking.__table__).values(event_id=event_id, email=_email(t), seats=1))
    with t.app.app_context():
        t.services.delete_event(event_id)
    t.require(_one(t, Event, event_id) is None and not _rows(t, Booking, event_id=event_id),
              f"event {event_id} and its booking are gone from the database", "they are still there",
              "Did you `db.session.delete(event)` and then `db.session.commit()`?")
    with t.app.app_context():
        error = raised(lambda: t.services.delete_event(event_id))
    t.require(isinstance(error, t.services.EventNotFound), f"deleting event {event_id} again raises `EventNotFound`",
              _name(error), "Do you find the event with `get_event(event_id)`, which raises it?")


@ex2.step("the endpoints `POST`, `GET`, `PATCH` and `DELETE /api/events/…` work end to end")
def _endpoints(t):
    client, name = t.client, t.word("Opera ").title()
    capacity = t.rng.randrange(10, 300)
    response = client.post("/api/events/", json={"name": name, "capacity": capacity})
    created = t.json(response, 201, "the new event", "Does `create_event` return the `Event` it stored?")
    event_id = created.get("id") if isinstance(created, dict) else None
    t.require(type(event_id) is int and created.get("seats_left") == capacity,
              f"the new event with an `id` and `seats_left` {capacity}", f"`{show(created)}`",
              "Does `create_event` set `seats_left` and commit before returning?")
    t.require(response.headers.get("Location") == f"/api/events/{event_id}", f"`Location: /api/events/{event_id}`",
              f"`Location: {response.headers.get('Location')}`", "Did you keep the given routes?")
    t.json(client.get(f"/api/events/{event_id}"), 200, "the event", "Does `get_event` find events by id?")
    changed = t.json(client.patch(f"/api/events/{event_id}", json={"name": name + " II"}), 200, "the changed event",
                     "Does `update_event` return the event?")
    t.require(isinstance(changed, dict) and changed.get("name") == name + " II", f"the name {name + ' II'!r}",
              f"`{show(changed)}`", "Does `update_event` set the new name?")
    response = client.delete(f"/api/events/{event_id}")
    t.require(response.status_code == 204, f"`DELETE /api/events/{event_id}` answers 204",
              f"it answered {response.status_code}", "Does `delete_event` delete and commit?")
    t.json(client.get(f"/api/events/{event_id}"), 404, "a JSON error: the event is gone",
           "Does `delete_event` commit the deletion?")


@ex2.step("`events/services.py` uses `db.select` and `db.session`, not the legacy `Event.query`")
def _no_legacy(t):
    tree = ast.parse((t.project / SERVICES).read_text(encoding="utf-8"))
    legacy = sorted({f"{node.value.id}.query" for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and node.attr == "query"
                     and isinstance(node.value, ast.Name) and node.value.id in ("Event", "Venue", "Booking")})
    t.require(not legacy, "queries written as `db.select(...)` run by `db.session`",
              f"{', '.join(f'`{q}`' for q in legacy)} in `{SERVICES}`",
              "`Model.query` is the legacy SQLAlchemy 1.x API: it works, but it is not typed, it differs from "
              "the `select()` used everywhere else, and new SQLAlchemy features are not added to it. "
              "Can you write it as `db.session.execute(db.select(Event)...)` or `db.session.get(Event, id)`?")


# --- exercise 3: pagination ------------------------------------------------------------------------

ex3 = chapter.exercise(
    "Pagination",
    hints=[
        "`db.paginate(statement, page=page, per_page=per_page, error_out=False)` runs the statement for one "
        "page (with `LIMIT` and `OFFSET`) and counts the total; the result has `.items`, `.page`, `.per_page`, "
        "`.total` and `.pages`. Your part is reading `page` and `per_page` from `request.args` safely.",
        "`request.args.get(\"page\")` is text or `None`. `None` means the default. Otherwise convert with "
        "`int(text)` inside `try`/`except ValueError`, and `abort(400, description=...)` when it fails or the "
        "number is below 1. Cap `per_page` with `min(per_page, MAX_PER_PAGE)`.",
        "`error_out=False` makes a page past the end an empty page instead of a 404. Return "
        "`{\"items\": [serialize(item) for item in result.items], \"page\": result.page, \"per_page\": "
        "result.per_page, \"total\": result.total, \"pages\": result.pages}`.",
    ],
)


def _page(t, query: str):
    """Call the learner's paginate() for `?query`; return the page or the HTTP error it aborted with."""
    with t.app.test_request_context(f"/api/items/?{query}"):
        return t.pagination.paginate(sa.select(t.items.c.id, t.items.c.label).order_by(t.items.c.id), t.serialize)


def _serialize(t):
    def serialize(item):
        return {"id": item, "label": t.labels[item]}
    return serialize


def _expect_page(t, query: str, page: int, per_page: int, hint: str):
    n = len(t.labels)
    ids = sorted(t.labels)[(page - 1) * per_page: page * per_page]
    wanted = {"items": [{"id": i, "label": t.labels[i]} for i in ids], "page": page, "per_page": per_page,
              "total": n, "pages": -(-n // per_page)}
    error = None
    try:
        seen = _page(t, query)
    except HTTPException as http:
        seen, error = None, http
    where = f"`paginate(...)` for `?{query}`" if query else "`paginate(...)` with no query string"
    t.require(error is None, f"{where} returns a page", lambda: f"it aborted with {error.code}", hint)
    t.require(isinstance(seen, dict) and sorted(seen) == sorted(wanted),
              f"{where} returns a dict with the keys `items`, `page`, `per_page`, `total`, `pages`",
              f"it returned {show(seen)}", "Do you return a `dict` built from the pagination's attributes?")
    for key in ("page", "per_page", "total", "pages"):
        t.require(type(seen[key]) is int and seen[key] == wanted[key],
                  f"{where}: `{key}` is {wanted[key]} ({n} rows in all)", f"`{key}` is {show(seen[key])}", hint)
    t.require(seen["items"] == wanted["items"],
              f"{where}: `items` are the rows {ids[:3]}{'…' if len(ids) > 3 else ''} ({len(ids)} of them), each passed through `serialize`",
              f"{show(seen['items'], 200)}", hint)


@ex3.step("`tickethub/pagination.py` defines `paginate(statement, serialize)`, `DEFAULT_PER_PAGE = 20` and `MAX_PER_PAGE = 100`")
def _pagination(t):
    t.pagination = t.module("tickethub.pagination")
    t.require(callable(getattr(t.pagination, "paginate", None)), "a function `paginate(statement, serialize)`",
              f"`paginate` is {show(getattr(t.pagination, 'paginate', None))}", "Did you keep the line `def paginate(statement, serialize):`?")
    for name, value in (("DEFAULT_PER_PAGE", 20), ("MAX_PER_PAGE", 100)):
        seen = getattr(t.pagination, name, None)
        t.require(seen == value and type(seen) is int, f"`{name} = {value}`", f"`{name}` is {show(seen)}",
                  "Did you keep the given constants?")
    # rows of the check's own, so this exercise does not depend on the models of exercise 1
    app = Flask("check")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=t.database_url())
    db = t.module("tickethub.db").db
    db.init_app(app)
    t.app, t.db = app, db
    t.items = sa.Table(t.word("items_"), sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("label", sa.String(40)))
    n = t.rng.randrange(45, 99)
    t.labels = {i: t.word().title() for i in t.rng.sample(range(1, 10 * n), n)}
    with app.app_context():
        speed_up(db.engine)
        with db.engine.begin() as connection:
            t.items.create(connection)
            connection.execute(sa.insert(t.items), [{"id": i, "label": label} for i, label in t.labels.items()])
    t.serialize = _serialize(t)


@ex3.step("with no `?page=` or `?per_page=`, it returns the first 20 rows, the total and the number of pages")
def _first_page(t):
    _expect_page(t, "", 1, 20, "Do you default `page` to 1 and `per_page` to `DEFAULT_PER_PAGE`, and pass them to "
                 "`db.paginate(statement, page=page, per_page=per_page, error_out=False)`?")


@ex3.step("`?page=` and `?per_page=` choose the page")
def _chosen_page(t):
    per_page = t.rng.randrange(3, 9)
    last = -(-len(t.labels) // per_page)
    for page in (t.rng.randrange(2, last - 1), last):
        _expect_page(t, f"page={page}&per_page={per_page}", page, per_page,
                     "Do you read both values from `request.args`, as whole numbers, and pass them to `db.paginate`?")


@ex3.step("a page past the end is empty, not an error")
def _past_the_end(t):
    per_page = t.rng.randrange(10, 30)
    page = -(-len(t.labels) // per_page) + t.rng.randrange(1, 5)
    error, seen = None, None
    try:
        seen = _page(t, f"page={page}&per_page={per_page}")
    except HTTPException as http:
        error = http
    t.require(error is None and isinstance(seen, dict) and seen.get("items") == [] and seen.get("total") == len(t.labels),
              f"page {page} of {per_page} rows (past the end) has `\"items\": []` and the `total` {len(t.labels)}",
              f"it aborted with {error.code}" if error else f"it returned {show(seen)}",
              "Did you pass `error_out=False` to `db.paginate`? By default it aborts with 404 past the end.")


@ex3.step("`?per_page=` above `MAX_PER_PAGE` is capped at 100")
def _capped(t):
    asked = t.rng.randrange(101, 5000)
    seen = _page(t, f"per_page={asked}")
    per_page = seen.get("per_page") if isinstance(seen, dict) else None
    t.require(per_page == 100 and len(seen.get("items", [])) == min(100, len(t.labels)),
              f"`?per_page={asked}` gives `per_page` 100", f"`per_page` is {show(per_page)}",
              "Do you cap it with `min(per_page, MAX_PER_PAGE)`? Without a cap, one request can ask for a million rows.")


@ex3.step("a `?page=` or `?per_page=` that is not a whole number of at least 1 is answered 400")
def _bad_values(t):
    for name in ("page", "per_page"):
        for value in ("0", f"-{t.rng.randrange(1, 9)}", t.word(), f"{t.rng.randrange(1, 9)}.5"):
            try:
                seen = _page(t, f"{name}={value}")
                what = f"it returned a page: {show(seen, 80)}"
                ok = False
            except HTTPException as http:
                what, ok = f"it aborted with {http.code}", http.code == 400
            except Exception as error:  # noqa: BLE001
                what, ok = f"it raised `{type(error).__name__}: {error}` (a 500 for the visitor)", False
            t.require(ok, f"`?{name}={value}` is answered 400 (`abort(400, ...)`)", what,
                      "Do you convert the text with `int()` inside `try`/`except ValueError`, and "
                      "`abort(400, description=...)` when that fails or the number is below 1?")


@ex3.step("only one page of rows is read from the database")
def _one_page_read(t):
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    with t.app.app_context():
        engine = t.db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        _page(t, "page=2&per_page=5")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    table = t.items.name
    everything = [s for s in statements if table in s and "LIMIT" not in s.upper() and "COUNT(" not in s.upper()]
    t.require(not everything, "each query either reads one page (`LIMIT`) or counts (`count(*)`)",
              lambda: f"`{everything[0][:140]}` reads every row",
              "Did you run the whole statement (`.all()`) and slice the list in Python? That reads every row to "
              "show five. `db.paginate` sends `LIMIT` and `OFFSET` to the database, and counts with `count(*)`.")


# --- exercise 4: 409 on a unique violation ---------------------------------------------------------

ex4 = chapter.exercise(
    "A unique violation is a 409, not a 500",
    hints=[
        "Register one more handler in `register_error_handlers(app)`: `@app.errorhandler(IntegrityError)` "
        "(imported from `sqlalchemy.exc`). Flask calls it whenever a view lets that exception escape.",
        "In the handler, first `db.session.rollback()`: after a failed flush the session refuses all work "
        "until it is rolled back. Then answer like the other API errors: `return http_error(Conflict(\"...\"))` "
        "reuses the JSON shape (`Conflict` is werkzeug's 409).",
        "Never put `str(error)` in the response: the database's message names tables, columns, constraints and "
        "values. Write your own message: `Conflict(\"That conflicts with data that already exists.\")`.",
    ],
)


@ex4.step("`POST /api/venues/` creates a venue (201)")
def _venue_created(t):
    _needs_models(t, "Venue.name", "Venue.city", "Venue.capacity")
    app_on_check_database(t, "venues")
    t.probes = []

    @t.app.after_request
    def probe(response):
        # what happens next in the same request: can the session still be used?
        if request.method == "POST":
            try:
                t.db.session.execute(sa.select(1)).scalar()
                t.probes.append(None)
            except Exception as error:  # noqa: BLE001
                t.probes.append(error)
        return response

    t.venue = {"name": t.word("Arena ").title(), "city": t.word().title(), "capacity": t.rng.randrange(100, 9000)}
    t.json(t.client.post("/api/venues/", json=t.venue), 201, "the new venue",
           "Is `Venue.name` a column (exercise 1), and did you keep `venues.bp` registered?")


def _post_duplicate(t, venue):
    try:
        return t.client.post("/api/venues/", json=venue), None
    except IntegrityError as error:
        return None, error


@ex4.step("a second venue with the same name is answered 409 with a JSON error")
def _conflict(t):
    duplicate = {**t.venue, "city": t.word().title()}
    response, error = _post_duplicate(t, duplicate)
    t.require(error is None, f"`POST /api/venues/` with the taken name {t.venue['name']!r} answers 409",
              "it answered 500: the `IntegrityError` reached Flask unhandled",
              "Did you register `@app.errorhandler(IntegrityError)` inside `register_error_handlers(app)`?")
    body = t.json(response, 409, "a JSON error", "Does your handler answer with status 409 (`Conflict`)?")
    t.require(isinstance(body, dict) and body.get("code") == 409 and type(body.get("code")) is int
              and body.get("error") == "Conflict" and isinstance(body.get("message"), str) and body["message"],
              '`{"code": 409, "error": "Conflict", "message": "…"}`, like the other API errors',
              f"`{show(body)}`", "Can you reuse the JSON shape of `http_error`, e.g. `return http_error(Conflict(\"...\"))`?")
    t.body = body


@ex4.step("the 409 does not show the database's own message")
def _no_leak(t):
    message = t.body["message"].lower()
    leaked = [word for word in LEAKS if word in message]
    t.require(not leaked, "a message of your own, without SQL, table or constraint names",
              f"the message `{' '.join(t.body['message'].split())[:120]}…`" if len(t.body["message"]) > 120
              else f"the message `{t.body['message']}`",
              "Did you send `str(error)`? The database's message names tables, columns, constraints and the values "
              "sent: useful to an attacker, useless to a visitor. Write your own message.")


@ex4.step("the session is rolled back, so the rest of the request can still use the database")
def _rolled_back(t):
    error = t.probes[-1] if t.probes else None
    t.require(error is None, "a query after the 409, in the same request, works",
              f"it raised `{type(error).__name__}`",
              "Did you call `db.session.rollback()` in the handler? After a failed flush, the session refuses "
              "every query until it is rolled back.")


@ex4.step("after the conflict the API carries on: a venue with a new name is created, and 404s stay JSON")
def _carries_on(t):
    other = {**t.venue, "name": t.venue["name"] + " " + t.word().title()}
    created = t.json(t.client.post("/api/venues/", json=other), 201, "the new venue",
                     "Does the handler leave the app able to serve the next request?")
    t.json(t.client.get(f"/api/venues/{created['id']}"), 200, "the venue", "Did you keep the other handlers?")
    missing = t.rng.randrange(10**6, 10**7)
    t.json(t.client.get(f"/api/venues/{missing}"), 404, "a JSON error", "Did you keep the `HTTPException` handler?")


# --- exercise 5: the booking transaction -----------------------------------------------------------

ex5 = chapter.exercise(
    "Book seats in one transaction",
    hints=[
        "A transaction is everything between two commits. Change the event's `seats_left` *and* add the "
        "`Booking`, then call `db.session.commit()` once: the database saves both or neither. Check the seats "
        "left before changing anything, and `raise SoldOut(event.seats_left)` when there are too few.",
        "A duplicate booking is found by the database, not by you: the unique constraint on "
        "(`event_id`, `email`) makes `commit()` raise `IntegrityError`. Catch it, call `db.session.rollback()` "
        "(which also puts `seats_left` back), and `raise AlreadyBooked(email)`. Don't look for an existing "
        "booking first: two requests can both find none.",
        "`event = db.session.get(Event, event_id)`; `None` → `raise EventNotFound(event_id)`; "
        "`event.seats_left < seats` → `raise SoldOut(event.seats_left)`; then `event.seats_left -= seats`, "
        "`booking = Booking(event=event, email=email, seats=seats)`, `db.session.add(booking)`, and "
        "`try: db.session.commit()` / `except IntegrityError: db.session.rollback(); raise AlreadyBooked(email) from None`. "
        "Return the booking.",
    ],
)

BOOKINGS = "tickethub/bookings/services.py"


@ex5.step("`tickethub/bookings/services.py` defines `book(event_id, data)`, `SoldOut` and `AlreadyBooked`")
def _booking_service(t):
    t.bookings = t.module("tickethub.bookings.services")
    for name in ("book", "SoldOut", "AlreadyBooked"):
        t.require(callable(getattr(t.bookings, name, None)), f"`{name}` in `{BOOKINGS}`",
                  f"`{name}` is {show(getattr(t.bookings, name, None))}", "Did you keep the given code around your part?")
    _needs_models(t, "Event.capacity", "Event.seats_left", "Booking.event_id", "Booking.email", "Booking.seats",
                  "Booking.event")
    app_on_check_database(t, "bookings")
    t.limit = t.app.config["MAX_TICKETS_PER_ORDER"]
    t.capacity = t.rng.randrange(30, 90)
    t.event_id = _event(t, capacity=t.capacity)


def _seats_left(t, event_id=None) -> int:
    return _one(t, _models(t)[1], event_id or t.event_id)["seats_left"]


def _bookings_of(t, email=None, event_id=None) -> list[dict]:
    where = {"event_id": event_id or t.event_id}
    if email:
        where["email"] = email
    return _rows(t, _models(t)[2], **where)


@ex5.step("`POST /api/events/<id>/bookings` books seats: 201, and `seats_left` goes down in the database")
def _books(t):
    t.email, seats = _email(t), t.rng.randrange(2, t.limit + 1)
    body = t.json(t.client.post(f"/api/events/{t.event_id}/bookings", json={"email": t.email, "seats": seats}), 201,
                  "the new booking", "Does `book` return the `Booking` it saved?")
    t.require(isinstance(body, dict) and type(body.get("id")) is int and body.get("seats") == seats,
              f"the booking of {seats} seats, with its `id`", f"`{show(body)}`", "Does `book` commit, then return the booking?")
    left = _seats_left(t)
    t.require(left == t.capacity - seats and len(_bookings_of(t, t.email)) == 1,
              f"in the database: one booking, and `seats_left` {t.capacity - seats} ({t.capacity} - {seats})",
              f"`seats_left` is {left}, bookings: {len(_bookings_of(t, t.email))}",
              "Do you lower `event.seats_left` by the seats booked, add the booking, and commit once?")
    t.left = left


@ex5.step("more seats than are left: `SoldOut`, answered 409, and nothing changes")
def _sold_out(t):
    Event = _models(t)[1]
    left = t.rng.randrange(1, t.limit - 1)
    _write(t, sa.update(Event.__table__).where(Event.__table__.c.id == t.event_id).values(seats_left=left))
    email, seats = _email(t), t.rng.randrange(left + 1, t.limit + 1)
    with t.app.app_context():
        error = raised(lambda: t.bookings.book(t.event_id, {"email": email, "seats": seats}))
        t.db.session.rollback()
    t.require(isinstance(error, t.bookings.SoldOut) and getattr(error, "seats_left", None) == left,
              f"`book()` for {seats} seats when {left} are left raises `SoldOut`, with `seats_left` {left}",
              _name(error) + (f" with `seats_left` {show(getattr(error, 'seats_left', None))}" if error else ""),
              "Do you compare `event.seats_left` with the seats asked for, and `raise SoldOut(event.seats_left)` "
              "before changing anything?")
    response = t.client.post(f"/api/events/{t.event_id}/bookings", json={"email": email, "seats": seats})
    t.json(response, 409, "a JSON error", "Does `book` raise `SoldOut` (the route turns it into 409)?")
    t.require(_seats_left(t) == left and not _bookings_of(t, email),
              f"`seats_left` is still {left}, and there is no booking for {email}",
              f"`seats_left` {_seats_left(t)}, bookings {len(_bookings_of(t, email))}",
              "Do you raise `SoldOut` before changing `seats_left`?")
    t.left = left


@ex5.step("a second booking by the same email: 409, and the seat count is rolled back")
def _duplicate(t):
    seats = t.rng.randrange(1, t.left + 1)
    try:
        response = t.client.post(f"/api/events/{t.event_id}/bookings", json={"email": t.email, "seats": seats})
    except IntegrityError:
        t.fail(f"`POST /api/events/{t.event_id}/bookings` by {t.email} a second time answers 409",
               "it answered 500: an unhandled `IntegrityError`",
               "Do you catch `IntegrityError` around `db.session.commit()` and `raise AlreadyBooked(email)`?")
    t.json(response, 409, "a JSON error", "Do you turn the `IntegrityError` of the unique constraint into `AlreadyBooked`?")
    left, count = _seats_left(t), len(_bookings_of(t, t.email))
    t.require(left == t.left and count == 1,
              f"`seats_left` is still {t.left} and {t.email} still has one booking",
              f"`seats_left` is {left}, bookings {count}",
              "Did you commit the new seat count before adding the booking? Then a failed booking keeps the seats. "
              "Change both, then call `commit()` once, so that they are saved together or not at all.")


@ex5.step("after `AlreadyBooked`, the same session can go on booking (it was rolled back)")
def _same_session(t):
    email = _email(t)
    with t.app.app_context():
        error = raised(lambda: t.bookings.book(t.event_id, {"email": t.email, "seats": 1}))
        t.require(isinstance(error, t.bookings.AlreadyBooked), f"`book()` for {t.email} a second time raises `AlreadyBooked`",
                  _name(error), "Do you catch `IntegrityError` around `db.session.commit()`, roll back, and "
                  "`raise AlreadyBooked(email)`?")
        error = raised(lambda: t.bookings.book(t.event_id, {"email": email, "seats": 1}))
    t.require(error is None and len(_bookings_of(t, email)) == 1 and _seats_left(t) == t.left - 1,
              f"then, in the same app context (as in a CLI command or a task), a booking for {email} works",
              f"it raised {_name(error)}" if error else f"`seats_left` {_seats_left(t)}, bookings {len(_bookings_of(t, email))}",
              "Did you call `db.session.rollback()` before raising `AlreadyBooked`? Until then the session refuses all work.")
    t.left -= 1


@ex5.step("a booking that loses a race to the same email's booking gets `AlreadyBooked`")
def _race(t):
    Event, Booking = _models(t)[1:]
    events, bookings = Event.__table__, Booking.__table__
    left = t.rng.randrange(5, 40)
    _write(t, sa.update(events).where(events.c.id == t.event_id).values(seats_left=left))
    email, seats, rival_seats = _email(t), t.rng.randrange(1, 3), t.rng.randrange(1, 3)
    state = {"done": False}

    def rival(conn, cursor, statement, parameters, context, executemany):
        # just before the learner's first write, another request books with the same email and commits
        if state["done"] or not statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return
        state["done"] = True
        with t.peek.begin() as other:
            other.execute(sa.insert(bookings).values(event_id=t.event_id, email=email, seats=rival_seats))
            other.execute(sa.update(events).where(events.c.id == t.event_id)
                          .values(seats_left=events.c.seats_left - rival_seats))

    with t.app.app_context():
        engine = t.db.engine
        sa.event.listen(engine, "before_cursor_execute", rival)
        try:
            error = raised(lambda: t.bookings.book(t.event_id, {"email": email, "seats": seats}))
        finally:
            sa.event.remove(engine, "before_cursor_execute", rival)
        t.db.session.rollback()
    t.require(
        isinstance(error, t.bookings.AlreadyBooked),
        f"`AlreadyBooked` when another request books for {email} between your checks and your commit",
        f"{_name(error)}" + (": the booking was saved twice?" if error is None else ""),
        "Did you look for an existing booking first? Two requests can both find none. Let the unique "
        "constraint decide: catch the `IntegrityError` from `commit()`, roll back, and raise `AlreadyBooked`.",
    )
    seen = _seats_left(t)
    t.require(seen == left - rival_seats and len(_bookings_of(t, email)) == 1,
              f"only the other request's booking is saved: `seats_left` {left - rival_seats} ({left} - {rival_seats})",
              f"`seats_left` {seen}, bookings for {email}: {len(_bookings_of(t, email))}",
              "Do you roll back when the commit fails?")


@ex5.step("a booking for an event that does not exist is answered 404")
def _no_event(t):
    missing = t.rng.randrange(10**6, 10**7)
    t.json(t.client.post(f"/api/events/{missing}/bookings", json={"email": _email(t), "seats": 1}), 404,
           "a JSON error", f"Does `book` `raise EventNotFound(event_id)` when `db.session.get(Event, {missing})` is `None`?")


# --- exercise 6: engine and pool settings -----------------------------------------------------------

ex6 = chapter.exercise(
    "Connection pool settings",
    hints=[
        "Flask-SQLAlchemy passes `SQLALCHEMY_ENGINE_OPTIONS` to `sqlalchemy.create_engine()`. In `Config`, "
        "make it a dict with the keys `pool_size`, `max_overflow`, `pool_pre_ping` and `pool_recycle`.",
        "`TestingConfig` uses `SQLALCHEMY_DATABASE_URI = \"sqlite://\"`: an in-memory database, new for every "
        "app. It lives inside one connection, so Flask-SQLAlchemy gives it a `StaticPool`, which has no size: "
        "`pool_size` and `max_overflow` there make `create_engine()` raise `TypeError`. Give `TestingConfig` "
        "its own `SQLALCHEMY_ENGINE_OPTIONS = {}`.",
        "`SQLALCHEMY_ENGINE_OPTIONS = {\"pool_size\": 5, \"max_overflow\": 10, \"pool_pre_ping\": True, "
        "\"pool_recycle\": 1800}` in `Config`; `SQLALCHEMY_DATABASE_URI = \"sqlite://\"` and "
        "`SQLALCHEMY_ENGINE_OPTIONS = {}` in `TestingConfig`.",
    ],
)

POOL = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True, "pool_recycle": 1800}


def _configured(t, name: str, url: str | None = None) -> Flask:
    """An app whose settings come from the learner's config class `name`, plus `url` if given.

    `url` stands in for DATABASE_URL, which `create_app()` (given) puts above the class.
    """
    cls = getattr(t.module("tickethub.config"), name)
    app = Flask("tickethub")
    app.config.from_object(cls)
    if url:
        app.config["SQLALCHEMY_DATABASE_URI"] = url
    try:
        t.module("tickethub.db").db.init_app(app)
    except RuntimeError as error:
        if "SQLALCHEMY_DATABASE_URI" not in str(error):
            raise
        t.fail(f"`{name}` chooses a database", f"`{name}` has no `SQLALCHEMY_DATABASE_URI`",
               f"Did you set `SQLALCHEMY_DATABASE_URI = \"sqlite://\"` in `{name}`?")
    except TypeError as error:
        if "create_engine" not in str(error):
            raise
        t.fail(f"an engine built from `{name}`", f"`TypeError: {str(error)[:160]}`",
               "Does an in-memory SQLite database (`sqlite://`) get pool options such as `pool_size`? "
               "Its pool keeps one connection and has no size: give `TestingConfig` `SQLALCHEMY_ENGINE_OPTIONS = {}`.")
    return app


def _where(t, url) -> str:
    """Name a database for feedback, without the check's temporary paths."""
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        try:
            return f"the SQLite file `{path.relative_to(t.project).as_posix()}`"
        except ValueError:
            return f"the SQLite file `{path.name}`"
    return f"`{url.render_as_string(hide_password=True)}`"


def _engine_of(t, app):
    with app.app_context():
        return t.module("tickethub.db").db.engine


@ex6.step("`Config.SQLALCHEMY_ENGINE_OPTIONS` sets `pool_size`, `max_overflow`, `pool_pre_ping` and `pool_recycle`")
def _options(t):
    config = t.module("tickethub.config")
    options = getattr(config.Config, "SQLALCHEMY_ENGINE_OPTIONS", None)
    t.require(isinstance(options, dict), "`Config.SQLALCHEMY_ENGINE_OPTIONS`, a dict", f"it is {show(options)}",
              "Did you add `SQLALCHEMY_ENGINE_OPTIONS = {...}` to `Config`, spelled exactly so?")
    for key, value in POOL.items():
        seen = options.get(key)
        t.require(type(seen) is type(value) and seen == value, f"`\"{key}\": {value!r}`",
                  f"`\"{key}\"` is {show(seen)}", "Are the keys spelled as `create_engine()` spells them, with values "
                  "of the right type (`True`, not `\"true\"`)?")


@ex6.step("the engine built from `DevelopmentConfig` or `ProductionConfig` has those settings (`db.engine.pool`)")
def _engine(t):
    name = t.rng.choice(["DevelopmentConfig", "ProductionConfig"])
    engine = _engine_of(t, _configured(t, name, t.database_url()))
    speed_up(engine)
    pool = engine.pool
    seen = {"pool_size": pool.size() if hasattr(pool, "size") else None,
            "max_overflow": getattr(pool, "_max_overflow", None),
            "pool_pre_ping": getattr(pool, "_pre_ping", None), "pool_recycle": getattr(pool, "_recycle", None)}
    t.require(type(pool).__name__ == "QueuePool" and seen == POOL,
              f"from `{name}`, a `QueuePool` with {show(POOL)}",
              f"a `{type(pool).__name__}` with {show(seen)}",
              "Is `SQLALCHEMY_ENGINE_OPTIONS` in `Config` itself, so that every environment inherits it?")
    held = [engine.connect() for _ in range(t.rng.randrange(2, 5))]
    try:
        for connection in held:
            connection.execute(sa.text("SELECT 1"))
        out = pool.checkedout()
    finally:
        for connection in held:
            connection.close()
    t.require(out == len(held) and pool.checkedout() == 0,
              f"{len(held)} connections checked out, then all returned", f"{out} checked out, then {pool.checkedout()}",
              "Is the pool a normal `QueuePool`?")
    t.engine = engine


@ex6.step("a connection that died in the pool is replaced before use (`pool_pre_ping`)")
def _pre_ping(t):
    engine = t.engine
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
        raw = connection.connection.dbapi_connection
    raw.close()  # as when the database restarts, or a firewall drops an idle connection
    try:
        with engine.connect() as connection:
            value = connection.execute(sa.text("SELECT 1")).scalar()
            error = None
    except sa.exc.DBAPIError as failure:
        value, error = None, failure
    t.require(value == 1, "a query works although its pooled connection was closed behind the pool's back",
              f"`{type(error).__name__}`", "Is `\"pool_pre_ping\": True` in `SQLALCHEMY_ENGINE_OPTIONS`?")


@ex6.step("`TestingConfig` gives every app a new, empty in-memory SQLite database")
def _testing(t):
    table = sa.Table(t.word("probe_"), sa.MetaData(), sa.Column("value", sa.Integer))
    value = t.rng.randrange(10**6)
    engines = [_engine_of(t, _configured(t, "TestingConfig")) for _ in range(2)]
    url = engines[0].url
    t.require(url.drivername.startswith("sqlite") and url.database in (None, "", ":memory:"),
              "`TestingConfig` uses `sqlite://`, an in-memory database",
              f"it uses {_where(t, url)}",
              "Did you set `SQLALCHEMY_DATABASE_URI = \"sqlite://\"` in `TestingConfig`? Tests then need no "
              "cleaning up, and never touch your development data.")
    with engines[0].begin() as connection:
        table.create(connection)
        connection.execute(sa.insert(table).values(value=value))
    with engines[0].connect() as connection:
        seen = connection.execute(sa.select(table.c.value)).scalar()
    t.require(seen == value, "the in-memory database keeps what was written, from one connection to the next",
              f"it gave back {show(seen)}",
              "Do `TestingConfig`'s engine options replace the pool? Leave `poolclass` to Flask-SQLAlchemy: for "
              "`sqlite://` it picks a `StaticPool`, which keeps the one connection the database lives in.")
    exists = sa.inspect(engines[1]).has_table(table.name)
    t.require(not exists, "a second testing app starts with an empty database", f"it sees the first app's table `{table.name}`",
              "Is `SQLALCHEMY_DATABASE_URI` in `TestingConfig` exactly `\"sqlite://\"`, not a file?")


@ex6.step("with `DATABASE_URL` set, `TestingConfig`'s engine options work on that database too")
def _testing_url(t):
    engine = _engine_of(t, _configured(t, "TestingConfig", t.database_url()))
    speed_up(engine)
    try:
        with engine.connect() as connection:
            value = connection.execute(sa.text("SELECT 42")).scalar()
        error = None
    except Exception as failure:  # noqa: BLE001
        value, error = None, failure
    t.require(value == 42, "a query works on a database file (or PostgreSQL) with `TestingConfig`'s engine options",
              f"`{type(error).__name__}: {str(error).splitlines()[0][:150] if error else ''}`",
              "Do `TestingConfig`'s `SQLALCHEMY_ENGINE_OPTIONS` hold something only in-memory SQLite understands, "
              "such as `connect_args={\"check_same_thread\": False}` or a `poolclass`? Flask-SQLAlchemy adds those "
              "for `sqlite://` by itself, and `DATABASE_URL` may point at PostgreSQL.")


# --- warming up the check server ----------------------------------------------------------------------


@chapter.warm_up
def _warm_up() -> None:
    """Run SQLAlchemy once in the check server, so each forked check skips its first-use costs."""
    from flask_sqlalchemy import SQLAlchemy

    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class Parent(db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(20), unique=True)
        children: Mapped[list["Child"]] = relationship(back_populates="parent", cascade="all, delete-orphan")

    class Child(db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)
        parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("parent.id"))
        parent: Mapped[Parent | None] = relationship(back_populates="children")
        __table_args__ = (sa.CheckConstraint("id > 0"), sa.UniqueConstraint("parent_id", "id"))

    app = Flask("warm-up")
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db.init_app(app)
    with app.app_context():
        db.create_all()
        db.session.add(Parent(name="a", children=[Child()]))
        db.session.commit()
        db.session.add(Parent(name="a"))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
        with app.test_request_context("/?page=1"):
            db.paginate(db.select(Parent).order_by(Parent.id), page=1, per_page=5, error_out=False)
        db.session.delete(db.session.get(Parent, 1))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    if os.environ.get("DATABASE_URL", "").startswith(("postgresql", "postgres:")):
        import psycopg  # noqa: F401
        import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401


setup, reset = chapter.setup, chapter.reset
