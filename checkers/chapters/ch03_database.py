"""Checks for chapter 03: database (models, CRUD, pagination, conflicts, transactions, pooling).

Every check gets its own empty database from `t.database_url()`: an SQLite file in the check's
scratch folder, or, when DATABASE_URL names PostgreSQL, a private schema there, so the same checks
hold on both and never write into the learner's project. The SQLAlchemy work runs in the learner's
process (`dbkit`'s probes and this module's); the steps compare the plain data that comes back.
"""
from __future__ import annotations

import ast
from types import SimpleNamespace as State

import sqlalchemy as sa

from ..engine.judge import show
from ..engine.learner import probe, safe_repr
from ..notebook.api import Chapter
from . import dbkit
from .dbkit import Refusal

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "Database")
chapter.warm_up(dbkit.warm_up)

MODELS, SERVICES = "tickethub/models.py", "tickethub/events/services.py"
BOOKING_SERVICES = "tickethub/bookings/services.py"
VENUES, EVENTS, BOOKINGS = "venues", "events", "bookings"
LIMIT = 10  # MAX_TICKETS_PER_ORDER in the check's apps
LEAKS = ("insert into", "constraint failed", "duplicate key value", "sqlalchemy", "sqlite",
         "psycopg", "venues.name", "uq_venues", "background on this error")
EX1_FIRST = "Is exercise 1 solved? Run `ex1.check()`: it says what is missing."


def _email(t) -> str:
    return f"{t.word()}.{t.word()}@example.com"


def _missing(t) -> int:
    return t.rng.randrange(10**6, 10**7)


def _name(error) -> str:
    return "no error" if error is None else f"`{error.type_name}`"


def _needs(t, *attributes: str) -> None:
    dbkit.needs(t, *attributes, source="exercise 1", hint=EX1_FIRST)


def _venue(t) -> int:
    """A venue committed through the check's own connection; its id."""
    return dbkit.insert(t, VENUES, {"name": t.word("Hall ").title() + f" {t.rng.randrange(10**6)}",
                                    "city": t.word().title(), "capacity": t.rng.randrange(100, 5000)})[0]


def _event(t, **fields) -> int:
    capacity = fields.pop("capacity", t.rng.randrange(20, 90))
    return dbkit.insert(t, EVENTS, {"name": t.word("Gig ").title(), "capacity": capacity, "seats_left": capacity,
                                    "venue_id": None, **fields})[0]


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
ex1.defines("tickethub.models", classes=["Venue", "Event", "Booking"])

# (model, column, python type, length, nullable, foreign key)
COLUMNS = [
    ("Venue", "name", "str", 120, False, None), ("Venue", "city", "str", 80, False, None),
    ("Venue", "capacity", "int", None, False, None), ("Event", "name", "str", 200, False, None),
    ("Event", "capacity", "int", None, False, None), ("Event", "seats_left", "int", None, False, None),
    ("Event", "venue_id", "int", None, True, "venues.id"), ("Booking", "event_id", "int", None, False, "events.id"),
    ("Booking", "email", "str", 254, False, None), ("Booking", "seats", "int", None, False, None),
]
# (model, attribute, other model, a list?, the other side's attribute)
RELATIONSHIPS = [
    ("Venue", "events", "Event", True, "venue"),
    ("Event", "venue", "Venue", False, "events"),
    ("Event", "bookings", "Booking", True, "event"),
    ("Booking", "event", "Event", False, "bookings"),
]


@ex1.step("they are models on `db.Model`, with their columns: the right types, lengths and `NOT NULL`s")
def _columns(t, names):
    models = {name: getattr(names, name) for name in ("Venue", "Event", "Booking")}
    schema = dbkit.describe(t, dbkit.learner_db(t), models)
    for name, facts in schema.items():
        t.require(facts["model"] and facts["mapped"], f"a model class `{name}(db.Model)` in `{MODELS}`",
                  lambda: f"`{name}` is {show(models[name])}", f"Did you keep the line `class {name}(db.Model):`?")
    for model, column, kind, length, nullable, _ in COLUMNS:
        columns = schema[model]["columns"]
        t.require(column in columns, f"a column `{model}.{column}`", f"`{schema[model]['table']}` has the columns "
                  f"{', '.join(f'`{c}`' for c in columns)}", f"Did you add `{column}: Mapped[...]` to `{model}`, spelled exactly so?")
        col, optional = columns[column], " | None" if nullable else ""
        for ok, expected, seen, hint in (
            (col["python"] == kind, f"`{model}.{column}` holds a `{kind}`", f"it is a `{col['type']}` column",
             f"Is it annotated `Mapped[{kind}{optional}]`?"),
            (length in (None, col["length"]), f"`{model}.{column}` is `String({length})`", f"it is `{col['type']}`",
             f"Did you write `mapped_column(String({length}))`? The length is part of the table's design (and "
             "PostgreSQL enforces it)."),
            (col["nullable"] is nullable, f"`{model}.{column}` is {'optional (may be NULL)' if nullable else 'required (NOT NULL)'}",
             f"it is {'optional' if col['nullable'] else 'required'}", f"`Mapped[{kind}]` makes a column required, "
             f"`Mapped[{kind} | None]` optional: which did you write?"),
        ):
            t.require(ok, expected, seen, hint)
    return models, schema


@ex1.step("`Event.venue_id` refers to `venues.id`, and `Booking.event_id` to `events.id`")
def _foreign_keys(t, state):
    for model, column, _, _, _, target in COLUMNS:
        targets = state[1][model]["columns"][column]["foreign_keys"]
        t.require(target is None or targets == [target], f"`{model}.{column}` is a foreign key to `{target}`",
                  f"its foreign keys are {show(targets)}",
                  f"Did you write `mapped_column(ForeignKey(\"{target}\"))`? (Table name, a dot, column name.)")
    return state


PAIRED = ("Does each side of a pair name the other in `back_populates`? `Event.venue` has "
          "`back_populates=\"events\"` and `Venue.events` has `back_populates=\"venue\"`.")


@probe
def _paired(Venue, Event, Booking):
    """Join new objects from one side of each pair, then from the other: what does the other side hold?"""
    venue, event, booking, other, ticket = Venue(), Event(), Booking(), Event(), Booking()
    event.venue, booking.event = venue, event
    many = ([e is event for e in venue.events], [b is booking for b in event.bookings])
    shown = [_kind(venue.events), _kind(event.bookings)]
    venue.events.append(other)
    event.bookings.append(ticket)
    return {"many": many, "one": (other.venue is venue, ticket.event is event),
            "shown": shown + [_kind(other.venue), _kind(ticket.event)]}


def _kind(value) -> str:
    """An object as `<Event>` (a model's own repr shows a number that means nothing), a list as a list of them."""
    if isinstance(value, list):
        return "[" + ", ".join(map(_kind, value)) + "]"
    return "None" if value is None else f"<{type(value).__name__}>"


@ex1.step("the relationships `Venue.events` ↔ `Event.venue` and `Event.bookings` ↔ `Booking.event` go both ways")
def _relationships(t, state):
    models, schema = state
    for model, attribute, other, many, back in RELATIONSHIPS:
        found, annotation = schema[model]["relationships"].get(attribute), f'list["{other}"]' if many else other
        t.require(found is not None and found["target"] == models[other], f"a relationship `{model}.{attribute}` to `{other}`",
                  f"`{model}.{attribute}` is missing" if found is None else f"`{model}.{attribute}` leads to `{found['target_name']}`",
                  f"Did you add `{attribute}: Mapped[{annotation}] = relationship(back_populates=\"{back}\")` to `{model}`?")
        t.require(found["many"] is many, f"`{model}.{attribute}` is {'a list of' if many else 'one'} `{other}`",
                  f"it is {'a list' if found['many'] else 'a single object'}",
                  f"Is the annotation `Mapped[list[\"{other}\"]]` (many) or `Mapped[{other}]` (one)?")
    paired = t.probe(_paired, *models.values())
    t.require(paired["many"] == ([True], [True]),
              "setting `event.venue = venue` adds the event to `venue.events` (and the same for bookings)",
              f"`venue.events` is `{paired['shown'][0]}` and `event.bookings` is `{paired['shown'][1]}`", PAIRED)
    t.require(paired["one"] == (True, True),
              "appending an event to `venue.events` sets its `venue` (and the same for bookings)",
              f"`event.venue` is `{paired['shown'][2]}` and `booking.event` is `{paired['shown'][3]}`", PAIRED)
    return models


READ_BACK = {"events": {"id": None, "name": None, "capacity": None, "venue_id": None,
                        "bookings": ["email", "seats", "event_id"]}}


@ex1.step("a venue with events and bookings can be saved and read back")
def _round_trip(t, models):
    Venue, Event, Booking = models.values()
    check, email, hall = dbkit.check_app(t), _email(t), t.word("Hall ").title()
    shows = [(t.word("Show ").title(), t.rng.randrange(10, 400)) for _ in range(2)]
    with dbkit.app_context(t, check.app):
        first = Event(name=shows[0][0], capacity=shows[0][1], seats_left=shows[0][1], bookings=[Booking(email=email, seats=2)])
        events = [first] + [Event(name=n, capacity=c, seats_left=c) for n, c in shows[1:]]
        venue = Venue(name=hall, city=t.word().title(), capacity=t.rng.randrange(500, 3000), events=events)
        error = dbkit.save(t, check, venue)
        t.require(error is None, "the venue, its events and a booking saved with one `commit()`", lambda: error.seen(),
                  "Do your models match the table in the exercise?")
        venue_id = t.get(venue, "id")
    with dbkit.app_context(t, check.app):
        events = sorted(dbkit.snapshot(t, check.session.get(Venue, venue_id), READ_BACK)["events"], key=lambda e: e["id"])
    seen, wanted = [(e["name"], e["capacity"], e["venue_id"]) for e in events], [(n, c, venue_id) for n, c in shows]
    t.require(seen == wanted, f"`venue.events` read back as {show(wanted)} (name, capacity, venue_id)", show(seen),
              "Do `Event.venue_id` and the relationships point at each other as asked?")
    t.require(type(venue_id) is int and type(events[0]["capacity"]) is int, "ids and capacities come back as `int`",
              f"{show(venue_id)}, {show(events[0]['capacity'])}", "Are the columns annotated `Mapped[int]`?")
    seen, wanted = [(b["email"], b["seats"], b["event_id"]) for b in events[0]["bookings"]], [(email, 2, events[0]["id"])]
    t.require(seen == wanted, f"`event.bookings` read back as {show(wanted)}", show(seen),
              "Does `Booking.event_id` refer to `events.id`, with `Event.bookings` and `Booking.event` paired?")
    return State(models=models, check=check, hall=hall, event_ids=[e["id"] for e in events], email=email)


@ex1.step("the database refuses a second venue with the same name, and a second booking by one email at one event")
def _unique(t, s):
    Venue, _, Booking = s.models.values()
    first, other = s.event_ids
    with dbkit.app_context(t, s.check.app):
        for row, refused, expected, hint in (
            (Venue(name=s.hall, city=t.word().title(), capacity=100), True, f"a second venue is named {s.hall!r}",
             "Did you pass `unique=True` to `mapped_column()` for `Venue.name`?"),
            (Booking(event_id=first, email=s.email, seats=1), True, f"{s.email} books event {first} twice",
             "Did you add `__table_args__ = (UniqueConstraint(\"event_id\", \"email\"),)` to `Booking`?"),
            (Booking(event_id=other, email=s.email, seats=1), False, "", "Is the email unique on its own (`unique=True` "
             "on `email`)? Only the pair `UniqueConstraint(\"event_id\", \"email\")` should be."),
        ):
            error = dbkit.save(t, s.check, row)
            if refused:
                t.require(error is not None and error.isa(sa.exc.IntegrityError), f"`IntegrityError` when {expected}",
                          f"{_name(error)}: the database stored both", hint)
            t.require(refused or error is None, f"{s.email} may book another event (the *pair* of event and email is unique)",
                      lambda: f"`IntegrityError`: {show(error.message)}", hint)
    return s


@ex1.step("the database refuses a negative `seats_left`, and allows 0 (sold out)")
def _check_constraint(t, s):
    where = {"id": s.event_ids[0]}
    refused = dbkit.update(t, EVENTS, where, {"seats_left": -1}, refusable=True)
    t.require(isinstance(refused, Refusal) and refused.isa("IntegrityError"),
              "`IntegrityError` when an event's `seats_left` is set to -1",
              f"{_name(refused if isinstance(refused, Refusal) else None)}: the database stored -1",
              "Did you add `__table_args__ = (CheckConstraint(\"seats_left >= 0\", name=\"seats_left_not_negative\"),)` "
              "to `Event`? It is the last line of defence against overbooking.")
    zero = dbkit.update(t, EVENTS, where, {"seats_left": 0}, refusable=True)
    t.require(zero == 1, "the database accepts `seats_left` 0: a sold-out event", lambda: f"it refused it: {zero.seen()}",
              "Is the constraint `seats_left >= 0` (not `> 0`)?")
    return s


@ex1.step("deleting an event deletes its bookings")
def _cascade(t, s):
    event_id = s.event_ids[0]
    with dbkit.app_context(t, s.check.app):
        s.check.session.delete(s.check.session.get(s.models["Event"], event_id))
        error = dbkit.commit(t, s.check)
    left = dbkit.rows(t, BOOKINGS, event_id=event_id)
    t.require(error is None and left == [] and dbkit.one(t, EVENTS, event_id) is None,
              f"event {event_id} and its booking are gone after `db.session.delete(event)`",
              "`IntegrityError`: SQLAlchemy tried to keep the bookings and empty their `event_id`" if error
              else f"bookings left behind: {show(left)}",
              "Does `Event.bookings` have `cascade=\"all, delete-orphan\"`? A booking makes no sense without its event.")


# --- exercise 2: the event service ----------------------------------------------------------------

ex2 = chapter.exercise(
    "Events in the database: create, read, update, delete",
    hints=[
        "Each function does its work through `db.session`: `db.session.get(Event, event_id)` reads one "
        "row by primary key (or gives `None`); `db.session.add(event)` plus `db.session.commit()` "
        "saves; `db.session.delete(event)` plus `db.session.commit()` deletes. Nothing is saved "
        "until `commit()`.",
        "`events_query()` only *builds* a statement, it does not run it: it returns `db.select(Event)`, ordered by `Event.id`. "
        "`get_event` raises `EventNotFound(event_id)` when `db.session.get(...)` gives `None`, and the others "
        "use `get_event` to find their event. A new event has every seat free: `Event(seats_left=fields[\"capacity\"], **fields)`.",
        "In `update_event`, the seats already booked are `event.capacity - event.seats_left`. If the new capacity "
        "is smaller, `raise InvalidEvent({\"capacity\": \"...\"})`; otherwise `event.seats_left = new_capacity - booked`. "
        "Then `setattr(event, name, value)` for each field, and `db.session.commit()`. `delete_event` is "
        "`db.session.delete(get_event(event_id))` and a commit.",
    ],
)
ex2.defines("tickethub.events.services", classes=["EventNotFound", "InvalidEvent"],
            functions=["events_query", "get_event", "create_event", "update_event", "delete_event"])


@ex2.step("`create_event(data)` stores a new event, with every seat free, and returns it")
def _create(t, services):
    _needs(t, "Event.name", "Event.capacity", "Event.seats_left", "Event.venue_id", "Event.bookings",
           "Venue.name", "Booking.event_id", "Booking.email", "Booking.seats")
    check = dbkit.check_app(t, "events")
    venue = _venue(t)
    data = {"name": t.word("Festival ").title(), "capacity": t.rng.randrange(50, 900), "venue_id": venue}
    with dbkit.app_context(t, check.app):
        event = services.create_event(dict(data))
        t.require(t.isa(event, check.model("Event")), f"`create_event({data})` returns the new `Event`",
                  lambda: f"it returned {show(event)}", "Do you `return event` at the end?")
        event_id = t.get(event, "id")
    row = dbkit.one(t, EVENTS, event_id) if type(event_id) is int else None
    t.require(row is not None, f"event {event_id} is in the database once `create_event` returns",
              "it is not there (seen from another connection)",
              "Did you `db.session.add(event)` and then `db.session.commit()`? Until `commit()`, only your own "
              "session can see the new row, and it is thrown away at the end of the request.")
    wanted = {"name": data["name"], "capacity": data["capacity"], "seats_left": data["capacity"], "venue_id": venue}
    t.require({k: row[k] for k in wanted} == wanted, f"the stored event is {show(wanted)}",
              lambda: show({k: row[k] for k in wanted}), "Does a new event start with `seats_left` equal to its `capacity`?")
    return State(services=services, check=check, venue=venue, event_id=event_id, name=data["name"])


@ex2.step("`get_event(event_id)` returns the event, and raises `EventNotFound` for an unknown id")
def _get(t, s):
    with dbkit.app_context(t, s.check.app):
        event = s.services.get_event(s.event_id)
        found = (t.get(event, "id"), t.get(event, "name"))
    t.require(found == (s.event_id, s.name), f"`get_event({s.event_id})` returns the `Event` named {s.name!r}",
              lambda: f"it returned {show(event)}", "Do you return `db.session.get(Event, event_id)`?")
    t.raises(dbkit.attempt(t, s.check.app, s.services.get_event, _missing(t)), s.services.EventNotFound,
             hint="`db.session.get()` gives `None` for an unknown id: do you then `raise EventNotFound(event_id)`?")
    return s


@ex2.step("`events_query()` returns a `select` of every event in id order")
def _query(t, s):
    more = [_event(t, name=t.word("Talk ").title()) for _ in range(t.rng.randrange(2, 5))]
    with dbkit.app_context(t, s.check.app):
        statement = s.services.events_query()
        t.require(t.isa(statement, sa.Select), "`events_query()` returns a statement, `db.select(Event)…`",
                  lambda: f"it returned {show(statement)}", "Do you return `db.select(Event)`, ordered by `Event.id`, "
                  "without running it? The list endpoint runs it one page at a time.")
        ids = [row[0] for row in dbkit.execute(t, s.check.db, statement)]
    wanted = sorted([s.event_id, *more])
    t.require(ids == wanted, f"running it gives the events {wanted}", f"it gave {show(ids)}",
              "Does it select `Event` rows (`db.select(Event)`) with no `where()` filter?")
    sql = dbkit.sql_of(t, statement, s.check.engine)
    t.require("ORDER BY" in sql, "the statement has an `ORDER BY`", f"`{sql[:120]}`",
              "Did you add `.order_by(Event.id)`? Without it the database may return rows in any order "
              "(PostgreSQL does, after updates), and pages would overlap or skip events.")
    return s


@ex2.step("`update_event` changes the fields sent, keeping booked seats booked")
def _update(t, s):
    capacity, booked = t.rng.randrange(30, 80), t.rng.randrange(5, 20)
    event_id = _event(t, capacity=capacity, seats_left=capacity - booked)
    dbkit.insert(t, BOOKINGS, {"event_id": event_id, "email": _email(t), "seats": booked})
    name, bigger = t.word("Renamed ").title(), capacity + t.rng.randrange(5, 50)
    for change, wanted, hint in (  # the row left: name, capacity, seats_left, venue_id
        ({"name": name}, (name, capacity, capacity - booked, None),
         "Do you change only the fields that were sent, and `db.session.commit()`?"),
        ({"capacity": bigger}, (name, bigger, bigger - booked, None),
         "Booked seats are `capacity - seats_left`; did you set `seats_left = new_capacity - booked`?"),
        ({"venue_id": s.venue}, (name, bigger, bigger - booked, s.venue), "Do you set every field that was sent?"),
        ({"capacity": booked}, (name, booked, 0, s.venue), f"A capacity of exactly the {booked} seats booked leaves 0 "
         "seats, which is allowed: do you refuse only a capacity *below* the seats booked?"),
        ({"capacity": booked - 1}, None, "Do you `raise InvalidEvent({\"capacity\": ...})` when the new capacity is "
         "below the seats booked, before changing anything?"),
    ):
        call = dbkit.attempt(t, s.check.app, s.services.update_event, event_id, change)
        if call.error is not None and not call.error.isa(s.services.InvalidEvent):
            raise call.error
        row = dbkit.one(t, EVENTS, event_id)
        if wanted is None:  # refused: nothing changes
            t.require(call.error is not None and row["capacity"] == booked, f"`InvalidEvent` for a capacity of "
                      f"{booked - 1} when {booked} seats are booked, and nothing changes",
                      f"{call.seen()}; the stored capacity is {show(row['capacity'])}", hint)
            errors = t.get(call.error.remote, "errors")
            t.require(type(errors) is dict and set(errors) == {"capacity"}, "`InvalidEvent` whose `errors` names "
                      "`capacity` only", lambda: f"`errors` is `{show(errors)}`", "Do you raise "
                      "`InvalidEvent({\"capacity\": \"...\"})`, naming the field that breaks the rule?")
            continue
        t.require(call.returned, f"{call.text} changes the event", call.seen, hint)
        t.require(t.isa(call.value, s.check.model("Event")), f"{call.text} returns the `Event`", call.seen,
                  "Do you `return event` at the end?")
        seen = tuple(row[k] for k in ("name", "capacity", "seats_left", "venue_id"))
        t.require(seen == wanted, f"after {call.text}, the stored name, capacity, `seats_left` and `venue_id` are "
                  f"{show(wanted)}", show(seen), hint)
    t.raises(dbkit.attempt(t, s.check.app, s.services.update_event, _missing(t), {"name": name}),
             s.services.EventNotFound, hint="Do you find the event with `get_event(event_id)`?")
    return s


@ex2.step("`delete_event` deletes the event and its bookings")
def _delete(t, s):
    event_id = _event(t)
    dbkit.insert(t, BOOKINGS, {"event_id": event_id, "email": _email(t), "seats": 1})
    with dbkit.app_context(t, s.check.app):
        s.services.delete_event(event_id)
    t.require(dbkit.one(t, EVENTS, event_id) is None and not dbkit.rows(t, BOOKINGS, event_id=event_id),
              f"event {event_id} and its booking are gone from the database", "they are still there",
              "Did you `db.session.delete(event)` and then `db.session.commit()`?")
    t.raises(dbkit.attempt(t, s.check.app, s.services.delete_event, event_id), s.services.EventNotFound,
             f"deleting event {event_id} again", "Do you find the event with `get_event(event_id)`, which raises it?")
    return s


@ex2.step("the endpoints `POST`, `GET`, `PATCH` and `DELETE /api/events/…` work end to end")
def _endpoints(t, s):
    client, name, capacity = s.check.client, t.word("Opera ").title(), t.rng.randrange(10, 300)
    reply = client.post("/api/events/", json={"name": name, "capacity": capacity})
    created = t.json(reply, 201, "the new event", "Does `create_event` return the `Event` it stored?")
    event_id = created.get("id") if isinstance(created, dict) else None
    t.require(type(event_id) is int and created.get("seats_left") == capacity,
              f"the new event with an `id` and `seats_left` {capacity}", f"`{show(created)}`",
              "Does `create_event` set `seats_left` and commit before returning?")
    t.require(reply.location == f"/api/events/{event_id}", f"`Location: /api/events/{event_id}`",
              f"`Location: {reply.location}`", "Did you keep the given routes?")
    t.json(client.get(f"/api/events/{event_id}"), 200, "the event", "Does `get_event` find events by id?")
    changed = t.json(client.patch(f"/api/events/{event_id}", json={"name": name + " II"}), 200, "the changed event",
                     "Does `update_event` return the event?")
    t.require(isinstance(changed, dict) and changed.get("name") == name + " II", f"the name {name + ' II'!r}",
              f"`{show(changed)}`", "Does `update_event` set the new name?")
    reply = client.delete(f"/api/events/{event_id}")
    t.require(reply.status_code == 204, f"`DELETE /api/events/{event_id}` answers 204",
              f"it answered {reply.status_code}", "Does `delete_event` delete and commit?")
    t.json(client.get(f"/api/events/{event_id}"), 404, "a JSON error: the event is gone",
           "Does `delete_event` commit the deletion?")


@ex2.step("`events/services.py` uses `db.select` and `db.session`, not the legacy `Event.query`")
def _no_legacy(t, state):
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
ex3.defines("tickethub.pagination", functions=["paginate"])


@probe
def _serializer(labels):
    """The check's `serialize`: an item (here a row's id, as `db.paginate` gives it) as the dict an endpoint sends."""
    return lambda item: {"id": item, "label": labels.get(item)} if type(item) is int else {"id": safe_repr(item)}


@ex3.step("`DEFAULT_PER_PAGE` is 20 and `MAX_PER_PAGE` is 100, as given")
def _pagination(t, names):
    for name, value in (("DEFAULT_PER_PAGE", 20), ("MAX_PER_PAGE", 100)):
        seen = t.get(names.module, name)
        t.require(seen == value and type(seen) is int, f"`{name} = {value}`", f"`{name}` is {show(seen)}",
                  "Did you keep the given constants?")
    # rows of the check's own, so that this exercise does not depend on the models of exercise 1
    check, items, n = dbkit.check_app(t, models=False), t.word("items_"), t.rng.randrange(45, 99)
    labels = {i: t.word().title() for i in t.rng.sample(range(1, 10 * n), n)}
    dbkit.create_table(t, items, {"id": "id", "label": "str"}, [{"id": i, "label": w} for i, w in labels.items()])
    dbkit.create_table(t, items + "_none", {"id": "id", "label": "str"})
    return State(paginate=names.paginate, check=check, items=items, labels=labels, serialize=t.probe(_serializer, labels),
                 statements=[dbkit.statement(t, table, "id", "label", order_by="id") for table in (items, items + "_none")])


def _page(t, s, query: str, empty: bool = False):
    """Call the learner's paginate() for `?query`: the `Call`, and the HTTP status it aborted with (or None)."""
    call = dbkit.attempt(t, s.check.app, s.paginate, s.statements[empty], s.serialize, path=f"/api/items/?{query}")
    return call, t.get(call.error.remote, "code") if call.error is not None and call.error.isa("HTTPException") else None


# the totals come from the pagination itself, whatever the page asked for: a wrong one has a cause of its own
COUNTED = {
    "total": "Is `total` the pagination's own `result.total`: every row the statement finds, not only this page's?",
    "pages": "Is `pages` the pagination's own `result.pages`: the total divided by `per_page`, rounded up (0 when "
             "there are no rows)? `total // per_page` drops a last page that is not full.",
}


def _expect_page(t, s, query: str, page: int, per_page: int, hint: str, empty: bool = False):
    labels = {} if empty else s.labels
    n, ids = len(labels), sorted(labels)[(page - 1) * per_page: page * per_page]
    wanted = {"items": [{"id": i, "label": labels[i]} for i in ids], "page": page, "per_page": per_page,
              "total": n, "pages": -(-n // per_page)}
    call, aborted = _page(t, s, query, empty)
    if call.error is not None and aborted is None:
        raise call.error
    where = f"`paginate(...)` for `?{query}`" if query else "`paginate(...)` with no query string"
    where += " on an empty table" if empty else ""
    t.require(call.returned, f"{where} returns a page", lambda: f"it aborted with {aborted}", hint)
    seen = call.value
    t.require(isinstance(seen, dict) and set(seen) == set(wanted),
              f"{where} returns a dict with the keys `items`, `page`, `per_page`, `total`, `pages`",
              f"it returned {show(seen)}", "Do you return a `dict` built from the pagination's attributes?")
    for key in ("page", "per_page", "total", "pages"):
        t.require(type(seen[key]) is int and seen[key] == wanted[key],
                  f"{where}: `{key}` is {wanted[key]} ({n} rows in all)", f"`{key}` is {show(seen[key])}",
                  COUNTED.get(key, hint))
    t.require(seen["items"] == wanted["items"], f"{where}: `items` are the rows {ids[:3]}{'…' if len(ids) > 3 else ''} "
              f"({len(ids)} of them), each passed through `serialize`", f"{show(seen['items'], 200)}", hint)


@ex3.step("with no `?page=` or `?per_page=`, it returns the first 20 rows, the total and the number of pages")
def _first_page(t, s):
    _expect_page(t, s, "", 1, 20, "Do you default `page` to 1 and `per_page` to `DEFAULT_PER_PAGE`, and pass them to "
                 "`db.paginate(statement, page=page, per_page=per_page, error_out=False)`?")
    return s


@ex3.step("`?page=` and `?per_page=` choose the page: the first, one in the middle, the last, pages of 1 and of all")
def _chosen_page(t, s):
    n, per_page = len(s.labels), t.rng.randrange(3, 9)
    last = -(-n // per_page)
    for page, size in ((1, per_page), (t.rng.randrange(2, last - 1), per_page), (last, per_page), (2, 1), (1, n)):
        _expect_page(t, s, f"page={page}&per_page={size}", page, size,
                     "Do you read both values from `request.args`, as whole numbers, and pass them to `db.paginate`?")
    return s


@ex3.step("a page past the end, or of an empty table, is empty, not an error")
def _past_the_end(t, s):
    per_page = t.rng.randrange(10, 30)
    page = -(-len(s.labels) // per_page) + t.rng.randrange(1, 5)
    call, aborted = _page(t, s, f"page={page}&per_page={per_page}")
    seen = call.value if call.returned else None
    t.require(isinstance(seen, dict) and seen.get("items") == [] and seen.get("total") == len(s.labels),
              f"page {page} of {per_page} rows (past the end) has `\"items\": []` and the `total` {len(s.labels)}",
              f"it aborted with {aborted}" if aborted else call.seen(),
              "Did you pass `error_out=False` to `db.paginate`? By default it aborts with 404 past the end.")
    _expect_page(t, s, "", 1, 20, "Does an empty table give page 1 of 20, with no items, as for any other table? "
                 "`db.paginate(..., error_out=False)` does.", empty=True)
    return s


@ex3.step("`?per_page=` above `MAX_PER_PAGE` is capped at 100")
def _capped(t, s):
    for asked in (100, 101, t.rng.randrange(102, 5000)):
        call, _ = _page(t, s, f"per_page={asked}")
        seen = call.value if call.returned and isinstance(call.value, dict) else {}
        t.require(seen.get("per_page") == 100 and len(seen.get("items", [])) == min(100, len(s.labels)),
                  f"`?per_page={asked}` gives `per_page` 100", f"`per_page` is {show(seen.get('per_page'))}"
                  if seen else call.seen(), "Do you cap it with `min(per_page, MAX_PER_PAGE)`? Without a cap, one "
                  "request can ask for a million rows.")
    return s


@ex3.step("a `?page=` or `?per_page=` that is not a whole number of at least 1 is answered 400")
def _bad_values(t, s):
    for name in ("page", "per_page"):
        for value in ("0", f"-{t.rng.randrange(1, 9)}", t.word(), f"{t.rng.randrange(1, 9)}.5"):
            call, aborted = _page(t, s, f"{name}={value}")
            t.require(aborted == 400, f"`?{name}={value}` is answered 400 (`abort(400, ...)`)",
                      f"it returned a page: {show(call.value, 80)}" if call.returned else f"it aborted with {aborted}"
                      if aborted else f"{call.seen()} (a 500 for the visitor)",
                      "Do you convert the text with `int()` inside `try`/`except ValueError`, and "
                      "`abort(400, description=...)` when that fails or the number is below 1?")
    return s


@ex3.step("only one page of rows is read from the database")
def _one_page_read(t, s):
    with dbkit.recording(t, s.check.engine) as seen:
        _page(t, s, "page=2&per_page=5")
    everything = [sql for sql in seen.sql if s.items in sql and "LIMIT" not in sql.upper() and "COUNT(" not in sql.upper()]
    t.require(not everything, "each query either reads one page (`LIMIT`) or counts (`count(*)`)",
              lambda: f"`{everything[0][:140]}` reads every row",
              "Did you run the whole statement (`.all()`) and slice the list in Python? That reads every row to "
              "show five. `db.paginate` sends `LIMIT` and `OFFSET` to the database, and counts with `count(*)`.")


# --- exercise 4: a taken name is a 409, any other broken rule a logged 500 ----------------------------

ex4 = chapter.exercise(
    "A taken name is a 409; any other broken rule is a bug",
    hints=[
        "`db.session.commit()` is where the database answers. Wrap it in `try:` / `except IntegrityError as "
        "error:` (from `sqlalchemy.exc`), and call `db.session.rollback()` first thing in the `except`: after a "
        "failed flush the session refuses all work until it is rolled back.",
        "Which rule broke? `violated_constraint(error)` (given in `tickethub/db.py`) gives the constraint's "
        "name, `\"uq_venues_name\"` for a taken name, on SQLite and on PostgreSQL alike. Only that one is "
        "`VenueNameTaken`. For anything else, a bare `raise` lets the `IntegrityError` go on: Flask logs it, "
        "with its traceback, and `errors.py` answers the visitor with a JSON 500.",
        "`try: db.session.commit()` / `except IntegrityError as error: db.session.rollback()`, then "
        "`if violated_constraint(error) == \"uq_venues_name\": raise VenueNameTaken(name) from None`, then `raise`; "
        "after the `try`, `return venue`.",
    ],
)
ex4.defines("tickethub.venues.services", functions=["create_venue"], classes=["VenueNameTaken"])
EX4_OTHER = ("Do you raise `VenueNameTaken` for every `IntegrityError`? Only the name rule (`violated_constraint(error)` "
             "is `\"uq_venues_name\"`) is a taken name; any other broken rule is a bug someone must see: `raise` it again.")


@ex4.step("`POST /api/venues/` creates a venue (201)")
def _venue_created(t, names):
    _needs(t, "Venue.name", "Venue.city", "Venue.capacity")
    check = dbkit.check_app(t, "venues", config={"PROPAGATE_EXCEPTIONS": False})  # a 500, as in production
    dbkit.watch_session(t, check)
    dbkit.watch_log(t, check.app)
    venue = {"name": t.word("Arena ").title(), "city": t.word().title(), "capacity": t.rng.randrange(100, 9000)}
    body = t.json(check.client.post("/api/venues/", json=venue), 201, "the new venue",
                  "Do you `return venue` after the commit? Is `Venue.name` a column (exercise 1)?")
    t.require(isinstance(body, dict) and type(body.get("id")) is int and dbkit.one(t, VENUES, body["id"]) is not None,
              "the new venue, with its `id`, committed", f"`{show(body)}`", "Do you `db.session.commit()` before returning?")
    return State(check=check, venue=venue, names=names)


@ex4.step("a second venue with the same name is answered 409 with a JSON error")
def _conflict(t, s):
    reply = s.check.client.post("/api/venues/", json={**s.venue, "city": t.word().title()})
    body = t.json(reply, 409, "a JSON error", "Do you catch the `IntegrityError` of `db.session.commit()`, and raise "
                  "`VenueNameTaken` when `violated_constraint(error)` is `\"uq_venues_name\"`? The view answers it with 409.")
    t.require(isinstance(body, dict) and body.get("code") == 409 and body.get("error") == "Conflict",
              '`{"code": 409, "error": "Conflict", "message": "…"}`, like the other API errors',
              f"`{show(body)}`", "Did you keep the given views and `errors.py`?")
    t.require(not [word for word in LEAKS if word in " ".join(str(body.get("message")).split()).lower()],
              "the view's own message, without SQL, table or constraint names", f"the message `{body.get('message')}`",
              "Do you raise `VenueNameTaken(name)`? Never pass the database's message on: it names tables, columns "
              "and the values sent.")
    return s


@ex4.step("the session is rolled back, so the rest of the request can still use the database")
def _rolled_back(t, s):
    error = (dbkit.session_checks(t) or [None])[-1]
    t.require(error is None, "a query after the 409, in the same request, works", f"it raised `{error}`",
              "Did you call `db.session.rollback()` before raising `VenueNameTaken`? After a failed flush, the "
              "session refuses every query until it is rolled back.")
    name = s.venue["name"]
    with dbkit.app_context(t, s.check.app):
        again = t.attempt(s.names.create_venue, {**s.venue, "city": t.word().title()})
        t.require(again.error is not None and again.error.isa(s.names.VenueNameTaken),
                  f"`create_venue()` with the taken name {name!r} raises `VenueNameTaken`", again.seen,
                  "Do you raise `VenueNameTaken` for the name rule?")
        other = {**s.venue, "name": f"{name} {t.word().title()}"}
        then = t.attempt(s.names.create_venue, other)
    t.require(then.returned and dbkit.count(t, VENUES, name=other["name"]) == 1,
              f"then, in the same app context (as in a CLI command), the venue {other['name']!r} is created",
              then.seen, "Did you call `db.session.rollback()` before raising `VenueNameTaken`?")
    return s


@ex4.step("after the conflict the API carries on: a venue with a new name is created, and 404s stay JSON")
def _carries_on(t, s):
    other = {**s.venue, "name": s.venue["name"] + " " + t.word().title()}
    created = t.json(s.check.client.post("/api/venues/", json=other), 201, "the new venue",
                     "Does `create_venue` leave the app able to serve the next request?")
    t.json(s.check.client.get(f"/api/venues/{created['id']}"), 200, "the venue", "Did you keep the given views?")
    t.json(s.check.client.get(f"/api/venues/{_missing(t)}"), 404, "a JSON error", "Did you keep the given views?")
    return s


@ex4.step("a broken rule of another kind (a `NOT NULL`) is not a 409: the `IntegrityError` is logged, and the "
          "visitor gets a JSON 500")
def _other_rule(t, s):
    column = t.word("audit_")
    dbkit.add_required_column(t, s.check.db, VENUES, column)  # a column the model does not know: NOT NULL fails
    venue = {"name": t.word("Dome ").title(), "city": t.word().title(), "capacity": t.rng.randrange(100, 9000)}
    reply = s.check.client.post("/api/venues/", json=venue)
    what = (f"`POST /api/venues/` for a new name, when the check's database has a required column `venues.{column}` "
            "that your model leaves empty (`NOT NULL constraint failed`), answers 500")
    t.require(reply.status_code == 500, what, f"it answered {reply.status_code}{reply.excerpt()}",
              EX4_OTHER if reply.status_code == 409 else "Do you `raise` any `IntegrityError` other than the name's "
              "again? Catching it and answering something else hides a bug.")
    body = t.json(reply, 500, "the JSON error of `errors.py`", "Did you keep the given `errors.py`?")
    t.require(body.get("message") == "Something went wrong on our side.", "the 500 handler's own message",
              f"`{show(body)}`", "Did you keep the given `errors.py`?")
    records = [r for r in dbkit.logged(t) if "IntegrityError" in r["exception"]]
    t.require(records, "the `IntegrityError` is logged, with its traceback (Flask logs an exception that escapes a view)",
              "nothing about it was logged", "Do you let the `IntegrityError` escape (a bare `raise`)?")
    t.require(dbkit.count(t, VENUES) == 0, "nothing was saved", "a venue was saved", "Do you roll back?")


# --- exercise 5: the booking transaction -----------------------------------------------------------

ex5 = chapter.exercise(
    "Book seats in one transaction",
    hints=[
        "A transaction is everything between two commits. Change the event's `seats_left` *and* add the "
        "`Booking`, then call `db.session.commit()` once: the database saves both or neither. Check the seats "
        "left before changing anything, and `raise SoldOut(event.seats_left)` when there are too few.",
        "A duplicate booking is found by the database, not by you: the unique constraint on "
        "(`event_id`, `email`) makes `commit()` raise `IntegrityError`. Catch it, call `db.session.rollback()` "
        "(which also puts `seats_left` back), and raise `AlreadyBooked(email)` when `violated_constraint(error)` "
        "(given in `tickethub/db.py`) is that constraint's name, `\"uq_bookings_event_id_email\"`. Any other "
        "broken rule is a bug: a bare `raise` lets it escape, to be logged. Don't look for an existing booking "
        "first: two requests can both find none.",
        "`event = db.session.get(Event, event_id)`; `None` → `raise EventNotFound(event_id)`; "
        "`event.seats_left < seats` → `raise SoldOut(event.seats_left)`; then `event.seats_left -= seats`, "
        "`booking = Booking(event=event, email=email, seats=seats)`, `db.session.add(booking)`, and "
        "`try: db.session.commit()` / `except IntegrityError as error: db.session.rollback()`, then `if "
        "violated_constraint(error) == \"uq_bookings_event_id_email\": raise AlreadyBooked(email) from None`, "
        "then `raise`. Return the booking.",
    ],
)
ex5.defines("tickethub.bookings.services", functions=["book"], classes=["SoldOut", "AlreadyBooked"])


@ex5.step("`bookings/services.py` imports nothing from Flask: the view passes the limit in")
def _no_flask(t, names):
    tree = ast.parse((t.project / BOOKING_SERVICES).read_text(encoding="utf-8"))
    flask = sorted({alias.name if isinstance(node, ast.Import) else node.module for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names if (alias.name if isinstance(node, ast.Import) else node.module or "")
                    .split(".")[0] in ("flask", "werkzeug", "flask_sqlalchemy")})
    t.require(not flask, f"a service that knows nothing of HTTP or Flask (chapter 01's rule)",
              f"`{BOOKING_SERVICES}` imports {', '.join(f'`{m}`' for m in flask)}",
              "Did you keep the given code? `book(event_id, data, max_seats)` gets the limit from the view, which "
              "reads `current_app.config[\"MAX_TICKETS_PER_ORDER\"]`.")
    return names


def _ledger(t, event_id: int, email: str, wanted: tuple, expected: str, hint: str) -> None:
    """Require the event's committed `seats_left`, and the number of bookings `email` has there, to be `wanted`."""
    seen = dbkit.one(t, EVENTS, event_id)["seats_left"], dbkit.count(t, BOOKINGS, event_id=event_id, email=email)
    t.require(seen == wanted, expected, f"`seats_left` {seen[0]}, bookings for {email}: {seen[1]}", hint)


def _booked_ok(t, check, event_id: int, seats: int, left: int, sold_out: str) -> str:
    """Book `seats` through the endpoint: 201, and `left` seats left in the database; the booking's email.

    `sold_out` is the hint for a refusal as sold out; other refusals have hints of their own causes.
    """
    email = _email(t)
    reply = check.client.post(f"/api/events/{event_id}/bookings", json={"email": email, "seats": seats})
    refused = reply.get_json(silent=True) if reply.status_code in (404, 409) else None
    message = refused.get("message", "") if isinstance(refused, dict) else ""
    hint = (sold_out if message.startswith("Not enough seats") else
            "A first booking by this email was refused as a duplicate: do you raise `AlreadyBooked` only for the "
            "`IntegrityError` of the rule on (`event_id`, `email`)?" if reply.status_code == 409 else
            "Do you find the event with `db.session.get(Event, event_id)`, and raise `EventNotFound` only when it is "
            "`None`?" if reply.status_code == 404 else "Does `book` return the `Booking` it saved?")
    body = t.json(reply, 201, "the new booking", hint)
    t.require(isinstance(body, dict) and type(body.get("id")) is int and body.get("seats") == seats,
              f"the booking of {seats} seats, with its `id`", f"`{show(body)}`", "Does `book` commit, then return the booking?")
    _ledger(t, event_id, email, (left, 1), f"in the database: one booking, and `seats_left` {left}",
            "Do you lower `event.seats_left` by the seats booked, add the booking, and commit once?")
    return email


@ex5.step("`POST /api/events/<id>/bookings` books seats: 201, and `seats_left` goes down (to 0 for the last seats)")
def _books(t, names):
    _needs(t, "Event.capacity", "Event.seats_left", "Booking.event_id", "Booking.email", "Booking.seats", "Booking.event")
    check = dbkit.check_app(t, "bookings", config={"MAX_TICKETS_PER_ORDER": LIMIT})
    capacity, seats, last = t.rng.randrange(30, 90), t.rng.randrange(2, LIMIT + 1), t.rng.randrange(1, LIMIT + 1)
    event_id, small = _event(t, capacity=capacity), _event(t, capacity=last)
    email = _booked_ok(t, check, event_id, seats, capacity - seats, f"{capacity} seats were left and {seats} asked "
                       "for: do you raise `SoldOut` only when fewer seats are left than asked for?")
    _booked_ok(t, check, small, last, 0, f"All {last} seats left were asked for: do you refuse only when fewer are "
               "left than asked for (`<`, not `<=`)?")
    return State(book=names.book, names=names, check=check, event_id=event_id, email=email, left=capacity - seats)


@ex5.step("more seats than are left: `SoldOut`, answered 409, and nothing changes")
def _sold_out(t, s):
    s.left = t.rng.randrange(1, LIMIT - 1)
    dbkit.update(t, EVENTS, {"id": s.event_id}, {"seats_left": s.left})
    booking = {"email": _email(t), "seats": t.rng.randrange(s.left + 1, LIMIT + 1)}
    call = dbkit.attempt(t, s.check.app, s.book, s.event_id, booking, LIMIT)
    sold_out = call.error is not None and call.error.isa(s.names.SoldOut)
    told = t.get(call.error.remote, "seats_left") if sold_out else None
    t.require(sold_out and told == s.left, f"`book()` for {booking['seats']} seats when {s.left} are left raises "
              f"`SoldOut`, with `seats_left` {s.left}", call.seen() + (f" with `seats_left` {show(told)}" if sold_out else ""),
              "Do you compare `event.seats_left` with the seats asked for, and `raise SoldOut(event.seats_left)` "
              "before changing anything?")
    t.json(s.check.client.post(f"/api/events/{s.event_id}/bookings", json=booking), 409, "a JSON error",
           "Does `book` raise `SoldOut` (the route turns it into 409)?")
    _ledger(t, s.event_id, booking["email"], (s.left, 0), f"`seats_left` is still {s.left}, and there is no booking for "
            f"{booking['email']}", "Do you raise `SoldOut` before changing `seats_left`?")
    return s


@ex5.step("a second booking by the same email: 409, and the seat count is rolled back")
def _duplicate(t, s):
    url = f"/api/events/{s.event_id}/bookings"
    reply = dbkit.send(t, s.check.client, "post", url, "IntegrityError", f"`POST {url}` by {s.email} a second time "
                       "answers 409", "Do you catch `IntegrityError` around `db.session.commit()`, and raise `AlreadyBooked(email)` "
                       "when `violated_constraint(error)` is `\"uq_bookings_event_id_email\"`?",
                       json={"email": s.email, "seats": t.rng.randrange(1, s.left + 1)})
    t.json(reply, 409, "a JSON error", "Do you turn the `IntegrityError` of the unique constraint into `AlreadyBooked`?")
    _ledger(t, s.event_id, s.email, (s.left, 1), f"`seats_left` is still {s.left} and {s.email} still has one booking",
            "Did you commit the new seat count before adding the booking? Then a failed booking keeps the seats. "
            "Change both, then call `commit()` once, so that they are saved together or not at all.")
    return s


@ex5.step("after `AlreadyBooked`, the same session can go on booking (it was rolled back)")
def _same_session(t, s):
    email = _email(t)
    with dbkit.app_context(t, s.check.app):
        again = t.attempt(s.book, s.event_id, {"email": s.email, "seats": 1}, LIMIT)
        t.require(again.error is not None and again.error.isa(s.names.AlreadyBooked),
                  f"`book()` for {s.email} a second time raises `AlreadyBooked`", again.seen,
                  "Do you catch `IntegrityError` around `db.session.commit()`, roll back, and `raise AlreadyBooked(email)`?")
        then = t.attempt(s.book, s.event_id, {"email": email, "seats": 1}, LIMIT)
    expected = f"then, in the same app context (as in a CLI command or a task), a booking for {email} works"
    hint = "Did you call `db.session.rollback()` before raising `AlreadyBooked`? Until then the session refuses all work."
    t.require(then.returned, expected, then.seen, hint)
    _ledger(t, s.event_id, email, (s.left - 1, 1), expected, hint)
    return s


@ex5.step("a booking that loses a race to the same email's booking gets `AlreadyBooked`")
def _race(t, s):
    left, email, seats, rival = t.rng.randrange(5, 40), _email(t), t.rng.randrange(1, 3), t.rng.randrange(1, 3)
    dbkit.update(t, EVENTS, {"id": s.event_id}, {"seats_left": left})
    # just before the learner's first write, another request books with the same email, and commits
    meanwhile = (dbkit.insert_op(BOOKINGS, {"event_id": s.event_id, "email": email, "seats": rival}),
                 dbkit.update_op(EVENTS, {"id": s.event_id}, add={"seats_left": -rival}))
    with dbkit.app_context(t, s.check.app), dbkit.interleave(t, s.check.engine, *meanwhile) as other:
        call = t.attempt(s.book, s.event_id, {"email": email, "seats": seats}, LIMIT)
    t.require(other.refusal is None, "the check's other request books too", lambda: other.refusal.seen(), dbkit.MODEL_HINT)
    t.require(call.error is not None and call.error.isa(s.names.AlreadyBooked),
              f"`AlreadyBooked` when another request books for {email} between your checks and your commit",
              call.seen() + (": the booking was saved twice?" if call.returned else ""),
              "Did you look for an existing booking first? Two requests can both find none. Let the unique "
              "constraint decide: catch the `IntegrityError` from `commit()`, roll back, and raise `AlreadyBooked`.")
    _ledger(t, s.event_id, email, (left - rival, 1), f"only the other request's booking is saved: `seats_left` "
            f"{left - rival} ({left} - {rival})", "Do you roll back when the commit fails?")
    return s


@ex5.step("a booking for an event that does not exist is answered 404")
def _no_event(t, s):
    missing = _missing(t)
    t.json(s.check.client.post(f"/api/events/{missing}/bookings", json={"email": _email(t), "seats": 1}), 404,
           "a JSON error", f"Does `book` `raise EventNotFound(event_id)` when `db.session.get(Event, {missing})` is `None`?")
    return s


OTHER_RULE = ("Do you raise `AlreadyBooked` for every `IntegrityError`? Only the rule on (`event_id`, `email`) "
              "(`violated_constraint(error)` is `\"uq_bookings_event_id_email\"`) means booked already; any other "
              "broken rule is a bug someone must see: `raise` it again.")


@ex5.step("a broken rule other than (`event_id`, `email`) is not `AlreadyBooked`: its `IntegrityError` escapes, "
          "and nothing changes")
def _other_rules(t, s):
    event_id, email = _event(t, capacity=t.rng.randrange(20, 90)), _email(t)
    left = dbkit.one(t, EVENTS, event_id)["seats_left"]
    # a unique rule of the check's own: one booking per email, whatever the event
    dbkit.write(t, dbkit.sql_op("DELETE FROM bookings"), dbkit.sql_op("CREATE UNIQUE INDEX uq_bookings_email ON bookings (email)"))
    dbkit.insert(t, BOOKINGS, {"event_id": s.event_id, "email": email, "seats": 1})
    column = t.word("audit_")
    for why, data, before in (
        (f"the check's own unique rule `uq_bookings_email` (one booking per email) is broken by {email}, who booked "
         f"event {s.event_id}", {"email": email, "seats": 1}, None),
        (f"the check's database has a required column `bookings.{column}` that your model leaves empty "
         "(`NOT NULL constraint failed`)", {"email": _email(t), "seats": 2}, column),
    ):
        if before:
            dbkit.add_required_column(t, s.check.db, BOOKINGS, before)
        call = dbkit.attempt(t, s.check.app, s.book, event_id, data, LIMIT)
        t.require(call.error is not None and call.error.isa("IntegrityError"),
                  f"when {why}, `book()` lets the `IntegrityError` escape (Flask logs it; the visitor gets a 500)",
                  call.seen(), OTHER_RULE if call.error is not None and call.error.isa(s.names.AlreadyBooked) else
                  "Do you `raise` the `IntegrityError` again when it is not the (`event_id`, `email`) rule?")
        _ledger(t, event_id, data["email"], (left, 0), f"then `seats_left` is still {left}, and there is no booking "
                f"for {data['email']}", "Do you `db.session.rollback()` before raising?")


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
ex6.defines("tickethub.config", classes=["Config", "DevelopmentConfig", "TestingConfig", "ProductionConfig"])
POOL = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True, "pool_recycle": 1800}


def _engine(t, names, name: str, url: str | None = None):
    """The engine `db` builds from the learner's config class `name`, as a handle.

    `url` stands in for DATABASE_URL, which `create_app()` (given) puts above the class.
    """
    app = dbkit.app_from_config(t, getattr(names, name), **({"SQLALCHEMY_DATABASE_URI": url} if url else {}))
    db = dbkit.learner_db(t)
    call = t.attempt(db.init_app, app)
    if call.error is not None:
        if call.error.isa(RuntimeError) and "SQLALCHEMY_DATABASE_URI" in call.error.message:
            t.fail(f"`{name}` chooses a database", f"`{name}` has no `SQLALCHEMY_DATABASE_URI`",
                   f"Did you set `SQLALCHEMY_DATABASE_URI = \"sqlite://\"` in `{name}`?")
        if call.error.isa(TypeError) and "create_engine" in call.error.message:
            t.fail(f"an engine built from `{name}`", f"`TypeError: {call.error.message[:160]}`",
                   "Does an in-memory SQLite database (`sqlite://`) get pool options such as `pool_size`? Its pool "
                   "keeps one connection and has no size: give `TestingConfig` `SQLALCHEMY_ENGINE_OPTIONS = {}`.")
        raise call.error
    return dbkit.engine_of(t, app, db)


@probe
def _keeps(engines, name: str, value: int) -> dict:
    """Write a row in the first engine's database, read it back on a new connection: does the second see it?"""
    table = sa.Table(name, sa.MetaData(), sa.Column("value", sa.Integer))
    try:
        with engines[0].begin() as connection:
            table.create(connection)
            connection.execute(sa.insert(table).values(value=value))
        with engines[0].connect() as connection:
            return {"seen": connection.execute(sa.select(table.c.value)).scalar(),
                    "second": sa.inspect(engines[1]).has_table(name)}
    except sa.exc.SQLAlchemyError as error:  # a new connection that found a new, empty database
        return {"seen": None, "refused": dbkit.refused(error)}


@ex6.step("`Config.SQLALCHEMY_ENGINE_OPTIONS` sets `pool_size`, `max_overflow`, `pool_pre_ping` and `pool_recycle`")
def _options(t, names):
    options = t.get(names.Config, "SQLALCHEMY_ENGINE_OPTIONS")
    t.require(isinstance(options, dict), "`Config.SQLALCHEMY_ENGINE_OPTIONS`, a dict", f"it is {show(options)}",
              "Did you add `SQLALCHEMY_ENGINE_OPTIONS = {...}` to `Config`, spelled exactly so?")
    for key, value in POOL.items():
        t.require(type(options.get(key)) is type(value) and options[key] == value, f"`\"{key}\": {value!r}`",
                  f"`\"{key}\"` is {show(options.get(key))}", "Are the keys spelled as `create_engine()` spells them, "
                  "with values of the right type (`True`, not `\"true\"`)?")
    return names


@ex6.step("the engines built from `DevelopmentConfig` and `ProductionConfig` have those settings (`db.engine.pool`)")
def _engines(t, names):
    revived = []
    for name in ("DevelopmentConfig", "ProductionConfig"):
        held = t.rng.randrange(2, 5)
        pool = dbkit.pool_facts(t, _engine(t, names, name, t.database_url()), held)
        seen = {key: pool[key] for key in POOL}
        t.require(pool["class"] == "QueuePool" and seen == POOL, f"from `{name}`, a `QueuePool` with {show(POOL)}",
                  f"a `{pool['class']}` with {show(seen)}",
                  "Is `SQLALCHEMY_ENGINE_OPTIONS` in `Config` itself, so that every environment inherits it?")
        t.require((pool.get("out"), pool.get("after")) == (held, 0), f"{held} connections checked out, then all returned",
                  lambda: f"it raised {pool['refused'].seen()}" if "refused" in pool else
                  f"{pool['out']} checked out, then {pool['after']}", "Is the pool a normal `QueuePool`, and do its "
                  "options (`connect_args`, say) suit every database?")
        revived.append(pool["revived"])
    return names, revived


@ex6.step("a connection that died in the pool is replaced before use (`pool_pre_ping`)")
def _pre_ping(t, state):
    for answer in state[1]:
        t.require(answer == 1, "a query works although its pooled connection was closed behind the pool's back",
                  lambda: f"`{answer.type_name}`", "Is `\"pool_pre_ping\": True` in `SQLALCHEMY_ENGINE_OPTIONS`?")
    return state[0]


@ex6.step("`TestingConfig` gives every app a new, empty in-memory SQLite database")
def _testing(t, names):
    engines = [_engine(t, names, "TestingConfig") for _ in range(2)]
    where = dbkit.url_facts(t, engines[0])
    t.require(where["memory"], "`TestingConfig` uses `sqlite://`, an in-memory database", f"it uses {where['where']}",
              "Did you set `SQLALCHEMY_DATABASE_URI = \"sqlite://\"` in `TestingConfig`? Tests then need no "
              "cleaning up, and never touch your development data.")
    table, value = t.word("probe_"), t.rng.randrange(10**6)
    kept = t.probe(_keeps, engines, table, value)
    t.require(kept["seen"] == value, "the in-memory database keeps what was written, from one connection to the next",
              Refusal.of(kept["refused"]).seen() if "refused" in kept else f"it gave back {show(kept['seen'])}", "Do `TestingConfig`'s engine options replace the pool? Leave "
              "`poolclass` to Flask-SQLAlchemy: for `sqlite://` it picks a `StaticPool`, which keeps the one "
              "connection the database lives in.")
    t.require(not kept["second"], "a second testing app starts with an empty database",
              f"it sees the first app's table `{table}`",
              "Is `SQLALCHEMY_DATABASE_URI` in `TestingConfig` exactly `\"sqlite://\"`, not a file?")
    return names


@ex6.step("with `DATABASE_URL` set, `TestingConfig`'s engine options work on that database too")
def _testing_url(t, names):
    answer = dbkit.ping(t, _engine(t, names, "TestingConfig", t.database_url()), 42)
    t.require(answer == 42, "a query works on a database file (or PostgreSQL) with `TestingConfig`'s engine options",
              lambda: answer.seen(), "Do `TestingConfig`'s `SQLALCHEMY_ENGINE_OPTIONS` hold something only in-memory "
              "SQLite understands, such as `connect_args={\"check_same_thread\": False}` or a `poolclass`? "
              "Flask-SQLAlchemy adds those for `sqlite://` by itself, and `DATABASE_URL` may point at PostgreSQL.")


setup, reset = chapter.setup, chapter.reset
