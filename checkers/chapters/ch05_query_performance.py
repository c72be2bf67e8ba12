"""Checks for chapter 05: query performance (N+1, eager loading, raw SQL, optimistic locking, indexes).

Every check gets its own empty database from `t.database_url()`: an SQLite file in the check's
scratch folder, or a private PostgreSQL schema when DATABASE_URL names a server. Query counts and
plans are read from the database's own answers, so the same checks hold on both.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re

import alembic.migration  # noqa: F401  (imported before the check server forks: checks start warm)
import alembic.operations  # noqa: F401
import flask_migrate  # noqa: F401
import sqlalchemy as sa
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401
from flask import Flask
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError

from ..engine.checking import show, speed_up
from .kit import app_on_check_database
from ..notebook.api import Chapter

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "Query performance", legacy=True)

OVERVIEW = "tickethub/events/overview.py"
DETAIL = "tickethub/events/detail.py"
REPORTS = "tickethub/reports.py"
MODELS = "tickethub/models.py"
MIGRATION = "migrations/versions/0004_indexes.py"
# --- helpers shared by the exercises ---------------------------------------------------------------


def _names(t, count: int) -> list[str]:
    """`count` different random one-word names: they sort the same way on every database."""
    names: set[str] = set()
    while len(names) < count:
        names.add(t.word().title())
    ordered = sorted(names)
    t.rng.shuffle(ordered)
    return ordered


def _insert(t, model, rows: list[dict]) -> list[int]:
    """Insert rows into a model's table through the check's own connection; return their ids, in order."""
    if not rows:
        return []
    table = model.__table__
    version = sa.inspect(model).version_id_col
    rows = [dict(row) for row in rows]
    for row in rows:
        if "slug" in table.c and "name" in row:  # chapter 04's column: set here rather than by its default
            row["slug"] = f"{row['name'].lower()}-{t.rng.randrange(10**9)}"
        if version is not None:
            row[version.key] = 1
    with t.peek.begin() as connection:
        if not connection.dialect.insert_executemany_returning_sort_by_parameter_order:  # SQLite before 3.35
            return [connection.execute(sa.insert(table).values(**row)).inserted_primary_key[0] for row in rows]
        result = connection.execute(sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        return list(result.scalars())


def _add_venues(t, cities: list[str]) -> list[dict]:
    """Add one venue per city given, each with a new random name; return them as dicts with their ids."""
    names = _names(t, len(cities))
    rows = [{"name": name, "city": city, "capacity": t.rng.randrange(100, 5000)} for name, city in zip(names, cities)]
    for row, id_ in zip(rows, _insert(t, t.Venue, rows)):
        row["id"] = id_
    return rows


def _add_events(t, venue_ids: list, bookings: list[int] | None = None) -> list[dict]:
    """Add one event per venue id given (None: no venue), with `bookings[i]` bookings each (default none).

    Each event's `seats_left` already counts its bookings; each event dict lists its bookings.
    """
    bookings = bookings or [0] * len(venue_ids)
    events = []
    for venue_id, count in zip(venue_ids, bookings):
        seats = [t.rng.randrange(1, 5) for _ in range(count)]
        capacity = t.rng.randrange(40, 200)
        events.append({"name": t.word("Gig ").title(), "capacity": capacity, "seats_left": capacity - sum(seats),
                       "venue_id": venue_id, "seats": seats})
    ids = _insert(t, t.Event, [{k: v for k, v in e.items() if k != "seats"} for e in events])
    rows = []
    for event, id_ in zip(events, ids):
        event["id"] = id_
        event["bookings"] = [{"event_id": id_, "email": f"{t.word()}{n}@example.com", "seats": seats}
                             for n, seats in enumerate(event.pop("seats"))]
        rows += event["bookings"]
    if rows:
        with t.peek.begin() as connection:
            connection.execute(sa.insert(t.Booking.__table__), rows)
    return events


class _Counter:
    """Record the statements an engine sends while in a `with` block (the chapter's own query counter)."""

    def __init__(self, engine):
        self.engine, self.statements = engine, []

    def _record(self, connection, cursor, statement, parameters, context, executemany):
        self.statements.append((" ".join(statement.split()), parameters))

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    @property
    def sql(self) -> list[str]:
        return [statement for statement, _ in self.statements]


def _excerpt(sql: str, limit: int = 110) -> str:
    sql = re.sub(r"%\(\w+\)s(::[A-Z]+(\(\d+\))?)?", "?", sql)
    sql = re.sub(r"^SELECT .+? FROM ", "SELECT … FROM ", sql)
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"


def _raised(call):
    try:
        return call(), None
    except Exception as error:  # noqa: BLE001 — the step decides what was right
        return None, error


# --- exercise 1: the overview ------------------------------------------------------------------------

ex1 = chapter.exercise(
    "An overview in a constant number of queries",
    hints=[
        "Looping over events and touching `event.venue` and `event.bookings` sends one query per event: "
        "the N+1 problem. Either load the relationships with the events (`joinedload(Event.venue)` and "
        "`selectinload(Event.bookings)` in `.options(...)`), or ask the database for exactly the columns "
        "the overview shows, the booking count included, in one query.",
        "One query: select `Event.id`, `Event.name`, `Venue.name.label(\"venue\")` and a count of bookings, "
        "with `.outerjoin(Event.venue)`, so that events without a venue stay. The count can be a correlated "
        "subquery, `db.select(func.count(Booking.id)).where(Booking.event_id == Event.id).scalar_subquery()`, "
        "labelled `\"bookings\"`. Order by `Event.id`, and turn the rows into dicts with `.mappings()`.",
        "`bookings = db.select(func.count(Booking.id)).where(Booking.event_id == Event.id).scalar_subquery()`, "
        "then `statement = db.select(Event.id, Event.name, Venue.name.label(\"venue\"), bookings.label(\"bookings\"))"
        ".outerjoin(Event.venue).order_by(Event.id)` and `return [dict(row) for row in "
        "db.session.execute(statement).mappings()]`.",
    ],
)


def _overview_data(t, events: int) -> None:
    """Add `events` events: most at venues of their own, some without a venue, with 0 to 3 bookings."""
    venues = _add_venues(t, [t.word().title() for _ in range(events)])
    venue_ids = [v["id"] if t.rng.random() > 0.2 else None for v in venues]
    venue_ids[0], venue_ids[-1] = venues[0]["id"], None  # at least one event without a venue
    counts = [t.rng.randrange(0, 4) for _ in venues]
    counts[0], counts[-1] = 0, t.rng.randrange(1, 4)  # at least one event without bookings, one with
    names = {v["id"]: v["name"] for v in venues}
    for event in _add_events(t, venue_ids, counts):
        t.expected.append({"id": event["id"], "name": event["name"],
                           "venue": names.get(event["venue_id"]), "bookings": len(event["bookings"])})


def _overview(t, events: int) -> tuple[list, int]:
    """Run the learner's `events_overview()` on `events` events in all; return its answer and its queries."""
    _overview_data(t, events - len(t.expected))
    with t.app.app_context():
        with _Counter(t.engine) as counter:
            result = t.overview.events_overview()
    wanted = t.expected
    t.require(isinstance(result, list), f"`events_overview()` returns a list (of {len(wanted)} dicts)",
              f"it returned {show(result)}", "Do you `return` the list of dicts at the end?")
    t.require(len(result) == len(wanted), f"one dict per event: {len(wanted)} of them",
              f"{len(result)} dicts" + (f", the first {show(result[0], 90)}" if result else ""),
              "Does a `JOIN` drop events without a venue? Use `.outerjoin(Event.venue)` (a `LEFT OUTER JOIN`). "
              "Or do you join the bookings, so that an event comes back once per booking? Group by the event, "
              "or count in a subquery.")
    for seen, want in zip(result, wanted):
        ok = (isinstance(seen, dict) and set(seen) == set(want)
              and all(seen[k] == want[k] for k in want)
              and type(seen["id"]) is int and type(seen["bookings"]) is int)
        if not ok:
            hint = "Are the keys exactly `id`, `name`, `venue` and `bookings`, in event id order?"
            if not isinstance(seen, dict):
                hint = ("Is each item a `dict`? Rows from `.mappings()` are read-only mappings, not dicts: "
                        "`[dict(row) for row in result.mappings()]`.")
            elif seen.get("id") == want["id"]:
                if seen.get("bookings") != want["bookings"]:
                    hint = ("Is `bookings` the number of bookings, and 0 for an event without any? With a "
                            "`LEFT JOIN` and `count(*)`, an event without bookings still has one row and counts 1: "
                            "count `Booking.id`, which is NULL there.")
                elif seen.get("venue") != want["venue"]:
                    hint = "Is `venue` the venue's name, and `None` for an event without a venue?"
                elif type(seen.get("bookings")) is not int or type(seen.get("id")) is not int:
                    hint = "Are `id` and `bookings` whole numbers (`int`)?"
            t.fail(f"event {want['id']} as {show(want)}", show(seen), hint)
    return result, len(counter.statements)


@ex1.step("`tickethub/events/overview.py` defines `events_overview()`")
def _overview_defined(t):
    t.overview = t.module("tickethub.events.overview")
    function = getattr(t.overview, "events_overview", None)
    t.require(callable(function), f"a function `events_overview` in `{OVERVIEW}`", f"`events_overview` is {show(function)}",
              "Did you keep the line `def events_overview():`?")
    app_on_check_database(t)
    t.expected = []


@ex1.step("it lists every event with its venue's name and its number of bookings, in id order")
def _overview_small(t):
    t.small = t.rng.randrange(3, 7)
    _, t.small_queries = _overview(t, t.small)


@ex1.step("the number of queries stays the same when there are many more events")
def _overview_large(t):
    large = t.rng.randrange(25, 45)
    _, queries = _overview(t, large)
    t.require(
        queries == t.small_queries,
        "the same number of queries for many events as for a few",
        f"{t.small_queries} queries for {t.small} events, {queries} for {large}",
        "Do you touch `event.venue` or `event.bookings` in a loop? Each first touch of a lazy relationship sends "
        "a query for that one event. Load them with the events (`joinedload`, `selectinload`), or count the "
        "bookings in the same query as the events.",
    )


@ex1.step("`GET /api/events/overview` answers `{\"events\": [...]}` (the route is given)")
def _overview_route(t):
    app = t.app
    app.register_blueprint(t.module("tickethub.events").bp, url_prefix="/api/events")
    body = t.json(t.app.test_client().get("/api/events/overview"), 200, "the overview",
                  "Did you run the cell that writes `tickethub/events/routes.py`? It adds the route.")
    t.require(isinstance(body, dict) and body.get("events") == t.expected, f"`{{\"events\": [...]}}` with {len(t.expected)} events",
              show(body), "Does `events_overview()` return plain dicts, ready for JSON?")


# --- exercise 2: the detail page ---------------------------------------------------------------------

ex2 = chapter.exercise(
    "An event page that loads exactly what it shows",
    hints=[
        "Build one `db.select(Event).where(Event.id == event_id)` with `.options(...)`: `joinedload(Event.venue)` "
        "(a many-to-one: the venue's columns join the event's row), `selectinload(Event.bookings)` (a "
        "collection: one more query with `IN`), and `raiseload(\"*\")` for everything else.",
        "Run it with `db.session.execute(statement).scalar_one_or_none()`; `None` means there is no such "
        "event: `raise EventNotFound(event_id)`. `joinedload` must stay an outer join (the default for an "
        "optional relationship), or events without a venue disappear.",
        "`statement = db.select(Event).where(Event.id == event_id).options(joinedload(Event.venue), "
        "selectinload(Event.bookings), raiseload(\"*\"))`, `event = db.session.execute(statement).scalar_one_or_none()`, "
        "`if event is None: raise EventNotFound(event_id)`, `return event`.",
    ],
)

PROBE = "check_probe"  # a relationship the check adds to Event, which event_detail() does not load


@ex2.step("`tickethub/events/detail.py` defines `event_detail(event_id)`")
def _detail_defined(t):
    t.detail = t.module("tickethub.events.detail")
    function = getattr(t.detail, "event_detail", None)
    t.require(callable(function), f"a function `event_detail` in `{DETAIL}`", f"`event_detail` is {show(function)}",
              "Did you keep the line `def event_detail(event_id):`?")
    models = t.module("tickethub.models")
    Event, Booking = models.Event, models.Booking
    if PROBE not in sa.inspect(Event).relationships:
        # added before any query is compiled, so that raiseload("*") sees it like any other relationship
        setattr(Event, PROBE, relationship(Booking, viewonly=True, lazy="select",
                                           primaryjoin=Event.id == sa.orm.foreign(Booking.event_id)))
    app_on_check_database(t)
    t.venue = _add_venues(t, [t.word().title()])[0]
    t.events = _add_events(t, [t.venue["id"], None], [t.rng.randrange(3, 9), 0])
    t.bookings = t.events[0]["bookings"]


def _load(t, event_id):
    """Call `event_detail(event_id)` in a fresh app context; record the SQL until the venue and bookings are read."""
    with t.app.app_context():
        with _Counter(t.engine) as counter:
            try:
                event = t.detail.event_detail(event_id)
            except InvalidRequestError as error:
                if "unique()" not in str(error):
                    raise
                t.fail("the bookings loaded by a query of their own (`selectinload`)",
                       "`InvalidRequestError`: a result with joined eager loads against a collection needs `.unique()`",
                       "Did you use `joinedload(Event.bookings)`? A `JOIN` to a collection sends the event's (and the "
                       "venue's) columns again with every booking. Use `selectinload(Event.bookings)`.")
            try:
                venue = getattr(event, "venue", None)
                seen = {
                    "id": getattr(event, "id", None),
                    "venue": None if venue is None else venue.name,
                    "bookings": sorted((b.email, b.seats) for b in getattr(event, "bookings", [])),
                }
            except InvalidRequestError as error:
                if "lazy='raise'" not in str(error):
                    raise
                what = re.search(r"'Event\.(\w+)'", str(error))
                name = what.group(1) if what else "venue"
                option = "selectinload(Event.bookings)" if name == "bookings" else "joinedload(Event.venue)"
                t.fail("the venue and the bookings loaded by `event_detail`, ready for the page",
                       f"`event.{name}` was not loaded: `raiseload(\"*\")` refused to load it lazily",
                       f"`raiseload(\"*\")` did its job: it caught a relationship the page needs but the query does not "
                       f"load. Did you add `{option}` to the options?")
    return event, seen, counter.sql


@ex2.step("it returns the event, with its venue and bookings, and raises `EventNotFound` for an unknown id")
def _detail_returns(t):
    event = t.events[0]
    found, seen, _ = _load(t, event["id"])
    wanted = {"id": event["id"], "venue": t.venue["name"],
              "bookings": sorted((b["email"], b["seats"]) for b in t.bookings)}
    t.require(isinstance(found, t.Event) and seen == wanted, f"`event_detail({event['id']})` returns that `Event`, "
              f"with venue {t.venue['name']!r} and {len(t.bookings)} bookings", f"{show(found)}: {show(seen, 200)}",
              "Do you select `Event` where `Event.id == event_id`, and return the `Event` (`scalar_one_or_none()`)?")
    missing = t.rng.randrange(10**6, 10**7)
    with t.app.app_context():
        _, error = _raised(lambda: t.detail.event_detail(missing))
    services = t.module("tickethub.events.services")
    t.require(isinstance(error, services.EventNotFound), f"`event_detail({missing})` raises `EventNotFound`",
              "no error" if error is None else f"`{type(error).__name__}`",
              "When the query finds nothing, do you `raise EventNotFound(event_id)`?")


@ex2.step("exactly two queries: the event `JOIN`ed with its venue, then its bookings with one `IN` query")
def _detail_queries(t):
    _, _, sql = _load(t, t.events[0]["id"])
    listing = "; ".join(f"`{_excerpt(s)}`" for s in sql)
    repeated = [s for s in sql if re.search(r"\bFROM \(SELECT .*\bJOIN bookings\b", s, re.I)]
    t.require(not repeated, "the bookings loaded with one `IN` query (`selectinload`)",
              f"`{_excerpt(repeated[0]) if repeated else ''}`",
              "That is `subqueryload`: it repeats the first query inside the second. `selectinload(Event.bookings)` "
              "sends just the event ids: simpler, and usually faster.")
    joined_bookings = [s for s in sql if re.search(r"\bJOIN bookings\b", s, re.I)]
    t.require(not joined_bookings, "the bookings loaded by a query of their own (`selectinload`)",
              f"they were joined to the event: `{_excerpt(joined_bookings[0]) if joined_bookings else ''}`",
              "A `JOIN` to a collection sends the event's (and the venue's) columns again with every booking. "
              "Did you use `joinedload(Event.bookings)`? Use `selectinload(Event.bookings)`.")
    venue_queries = [s for s in sql if re.search(r"\bFROM venues\b", s, re.I)]
    t.require(not venue_queries, "the venue loaded in the event's query, with a `JOIN`",
              f"a query of its own: `{_excerpt(venue_queries[0]) if venue_queries else ''}`",
              "For a many-to-one such as `Event.venue`, `joinedload(Event.venue)` adds the venue's columns to the "
              "event's row: no extra round trip. Did you use `selectinload` or leave it lazy?")
    t.require(len(sql) == 2, "2 queries, whatever the number of bookings", f"{len(sql)}: {listing}",
              "Did you load the bookings with `selectinload(Event.bookings)` and the venue with `joinedload(Event.venue)`, "
              "in one `db.select(Event)` (no second `db.session.get`)?")
    first, second = sql
    t.require(re.search(r"\bFROM events\b", first, re.I) and re.search(r"\bJOIN venues\b", first, re.I),
              "the first query reads `events` `JOIN` `venues`", f"`{_excerpt(first)}`",
              "Is `joinedload(Event.venue)` among the options of your `db.select(Event)`?")
    t.require(re.search(r"\bFROM bookings\b", second, re.I) and re.search(r"\bIN\s*\(", second, re.I),
              "the second query reads `bookings` with `WHERE bookings.event_id IN (…)`", f"`{_excerpt(second)}`",
              "Is `selectinload(Event.bookings)` among the options?")


@ex2.step("an event without a venue is found too (the venue is an outer join), still in two queries")
def _detail_no_venue(t):
    event = t.events[1]
    services = t.module("tickethub.events.services")
    try:
        found, seen, sql = _load(t, event["id"])
    except services.EventNotFound:
        t.fail(f"`event_detail({event['id']})` finds event {event['id']}, which has no venue",
               "it raised `EventNotFound`", "Did you write `joinedload(Event.venue, innerjoin=True)`, or `.join(Event.venue)`? "
               "An inner join drops an event without a venue; `joinedload`'s default outer join keeps it.")
    t.require(seen == {"id": event["id"], "venue": None, "bookings": []} and len(sql) == 2,
              f"`event_detail({event['id']})` returns the event, `venue` None, no bookings, in 2 queries",
              f"{show(found)}, {show(seen)}, {len(sql)} queries",
              "Did you write `joinedload(Event.venue, innerjoin=True)`? An inner join drops an event without a venue.")


@ex2.step("any other relationship raises instead of loading lazily (`raiseload(\"*\")`)")
def _detail_raiseload(t):
    with t.app.app_context():
        event = t.detail.event_detail(t.events[0]["id"])
        with _Counter(t.engine) as counter:
            _, error = _raised(lambda: list(getattr(event, PROBE)))
    t.require(isinstance(error, InvalidRequestError) and not counter.statements,
              f"touching `event.{PROBE}`, a relationship the check added to `Event`, raises `InvalidRequestError`",
              "it was loaded lazily, with a query" if error is None else f"`{type(error).__name__}`",
              "Did you add `raiseload(\"*\")` to the options? Then a relationship nobody asked for (say, one added to "
              "`Event` next year) raises at once instead of sending a query per event.")


# --- exercise 3: the sales report --------------------------------------------------------------------

ex3 = chapter.exercise(
    "A sales report in SQL",
    hints=[
        "Start from the venues of the city and `LEFT JOIN` events, then bookings: `FROM venues AS v LEFT JOIN "
        "events AS e ON e.venue_id = v.id LEFT JOIN bookings AS b ON b.event_id = e.id WHERE v.city = :city`. "
        "Group by the venue, `GROUP BY v.id, v.name`. Run it with `db.session.execute(text(...), {\"city\": city})`.",
        "The joins give one row per booking, so count events with `COUNT(DISTINCT e.id)`, bookings with "
        "`COUNT(b.id)` (which skips the NULLs of a venue or event without bookings), and seats with "
        "`COALESCE(SUM(b.seats), 0)`. Name the columns with `AS venue`, `AS events`, `AS bookings`, `AS seats_sold`, "
        "and `ORDER BY seats_sold DESC, v.name`.",
        "`rows = db.session.execute(statement, {\"city\": city}).mappings()` gives dict-like rows: "
        "`return [dict(row) for row in rows]`. Never put `city` into the SQL text (no f-string, no `%`, no `+`): "
        "the `:city` placeholder sends it separately, so it can only ever be compared, never run.",
    ],
)

PAYLOADS = [
    "{city}' OR '1'='1",
    "{city}' OR 1=1 --",
    "{city}'; DELETE FROM bookings; --",
    "' UNION SELECT name, 1, 1, 1 FROM venues --",
]


def _report_data(t):
    """Venues in the check's city (one with no events, one with events but no bookings) and elsewhere."""
    t.city, other = t.word().title(), t.word().title()
    count = t.rng.randrange(3, 6)
    cities = [t.city] * count + [other] * 2
    venues = _add_venues(t, cities)
    venue_ids, counts = [None], [t.rng.randrange(1, 4)]  # an event without a venue: in no city's report
    for index, venue in enumerate(venues):
        events = 0 if index == 0 else t.rng.randrange(1, 4)  # the first venue has no events
        venue_ids += [venue["id"]] * events
        # the second venue's events have no bookings; the others' first event has two or more
        counts += [0 if index == 1 else t.rng.randrange(0 if n else 2, 5) for n in range(events)]
    events = _add_events(t, venue_ids, counts)
    expected = {v["name"]: {"venue": v["name"], "events": 0, "bookings": 0, "seats_sold": 0}
                for v in venues if v["city"] == t.city}
    names = {v["id"]: v["name"] for v in venues}
    for event in events:
        row = expected.get(names.get(event["venue_id"]))
        if row is not None:
            row["events"] += 1
            row["bookings"] += len(event["bookings"])
            row["seats_sold"] += sum(b["seats"] for b in event["bookings"])
    rows = sorted(expected.values(), key=lambda row: (-row["seats_sold"], row["venue"]))
    if rows == sorted(rows, key=lambda row: row["venue"]):  # then ORDER BY name alone would pass: swap two names
        _swap_names(t, rows[0], rows[-1])
        rows.sort(key=lambda row: (-row["seats_sold"], row["venue"]))
    t.expected = rows


def _swap_names(t, first: dict, second: dict) -> None:
    """Swap two venues' names, in the database and in the expected rows (names are unique: via a third)."""
    table = t.Venue.__table__
    a, b = first["venue"], second["venue"]
    with t.peek.begin() as connection:
        for old, new in ((a, a + "Swap"), (b, a), (a + "Swap", b)):
            connection.execute(sa.update(table).where(table.c.name == old).values(name=new))
    first["venue"], second["venue"] = b, a


def _counts(t) -> dict:
    with t.peek.connect() as connection:
        return {m.__tablename__: connection.execute(sa.select(sa.func.count()).select_from(m.__table__)).scalar_one()
                for m in (t.Venue, t.Event, t.Booking)}


@ex3.step("`tickethub/reports.py` defines `sales_by_venue(city)`")
def _report_defined(t):
    t.reports = t.module("tickethub.reports")
    function = getattr(t.reports, "sales_by_venue", None)
    t.require(callable(function), f"a function `sales_by_venue` in `{REPORTS}`", f"`sales_by_venue` is {show(function)}",
              "Did you keep the line `def sales_by_venue(city):`?")
    app_on_check_database(t)
    _report_data(t)


@ex3.step("it gives exact totals per venue of the city, best sellers first")
def _report_totals(t):
    with t.app.app_context():
        result = t.reports.sales_by_venue(t.city)
    wanted = t.expected
    t.require(isinstance(result, list) and all(isinstance(row, dict) for row in result),
              "a list of dicts", f"{show(result, 200)}", "Do you return `[dict(row) for row in result.mappings()]`?")
    names = [row.get("venue") for row in result]
    t.require(sorted(map(str, names)) == sorted(w["venue"] for w in wanted),
              f"the {len(wanted)} venues in {t.city!r}: {', '.join(w['venue'] for w in wanted)}",
              f"{show(names, 200)}",
              "Did you keep the venues without events or bookings? A `JOIN` drops them; a `LEFT JOIN` keeps them. "
              "And do you filter on `v.city = :city`?")
    by_name = {row["venue"]: row for row in result}
    for want in wanted:
        seen = by_name[want["venue"]]
        if seen == want and all(type(seen[k]) is int for k in ("events", "bookings", "seats_sold")):
            continue
        hint = "Are the keys exactly `venue`, `events`, `bookings` and `seats_sold`?"
        if set(seen) == set(want):
            if seen["events"] != want["events"]:
                hint = ("The join gives one row per booking: `COUNT(e.id)` counts the event once per booking. "
                        "Did you write `COUNT(DISTINCT e.id)`?")
            elif seen["bookings"] != want["bookings"]:
                hint = "`COUNT(*)` counts the row a `LEFT JOIN` keeps for an event without bookings: count `b.id`."
            elif seen["seats_sold"] != want["seats_sold"]:
                hint = ("With no bookings, `SUM(b.seats)` is NULL (`None`), not 0: did you write "
                        "`COALESCE(SUM(b.seats), 0)`?")
            else:
                hint = "Are the counts whole numbers (`int`), not text or decimals?"
        t.fail(f"the row of venue {want['venue']}: `{want}`", f"`{show(seen)}`", hint)
    t.require(result == wanted, "ordered by `seats_sold`, most first, then by venue name",
              f"the order {show([(r['venue'], r['seats_sold']) for r in result], 200)}",
              "Did you add `ORDER BY seats_sold DESC, v.name`?")


@ex3.step("injection payloads as the city find nothing, raise nothing and change nothing")
def _report_injection(t):
    before = _counts(t)
    for template in PAYLOADS:
        payload = template.format(city=t.city)
        with t.app.app_context():
            result, error = _raised(lambda: t.reports.sales_by_venue(payload))
            if error is not None:
                t.db.session.rollback()
        t.require(error is None, f"`sales_by_venue({payload!r})` returns `[]`, as for any unknown city",
                  f"it raised `{type(error).__name__}`: the quote in the text ended a string in your SQL",
                  "Did you put `city` into the SQL text (an f-string, `%` or `+`)? Pass it as a bound parameter: "
                  "`text(\"... WHERE v.city = :city ...\")` and `execute(statement, {\"city\": city})`.")
        t.require(result == [], f"`sales_by_venue({payload!r})` returns `[]`, as for any unknown city",
                  f"it returned {show(result, 160)}: the text became part of your SQL",
                  "Did you put `city` into the SQL text? Pass it as a bound parameter: `:city` in the SQL, and "
                  "`{\"city\": city}` as the second argument of `execute()`.")
    after = _counts(t)
    t.require(after == before, f"the tables unchanged: {before}", f"{after}",
              "Did a payload run as SQL? Bind the value: `:city`.")


@ex3.step("the city travels as a bound parameter, never inside the SQL text")
def _report_bound(t):
    city = t.word().title() + "Ville"
    with t.app.app_context():
        with _Counter(t.engine) as counter:
            t.reports.sales_by_venue(city)
    inside = [s for s, _ in counter.statements if city in s]
    bound = [p for _, p in counter.statements if city in repr(p)]
    t.require(not inside and bound, f"the value {city!r} among the statement's parameters, not in its text",
              f"it is in the SQL: `{_excerpt(inside[0], 160)}`" if inside else "it was not sent at all",
              "Did you format the city into the SQL, even escaped? Use `:city` and pass `{\"city\": city}`.")


@ex3.step("`reports.py` writes its SQL with `text()`")
def _report_text(t):
    tree = ast.parse((t.project / REPORTS).read_text(encoding="utf-8"))
    called = {node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
              for node in ast.walk(tree) if isinstance(node, ast.Call)}
    t.require("text" in called, "a `text(\"SELECT ...\")` statement", "no call of `text()` in the file",
              "This exercise is about SQL written by hand: did you build the query with `select()` instead? "
              "That works too, but here, write the SQL with `text()`.")


@ex3.step("`GET /api/reports/sales?city=...` answers the report (the route is given)")
def _report_route(t):
    t.app.register_blueprint(t.reports.bp, url_prefix="/api/reports")
    body = t.json(t.app.test_client().get("/api/reports/sales", query_string={"city": t.city}), 200, "the report",
                  "Did you keep the route `@bp.get(\"/sales\")` below your function?")
    t.require(isinstance(body, dict) and body.get("venues") == t.expected, f"`{{\"city\": {t.city!r}, \"venues\": [...]}}`",
              show(body, 200), "Does the route return `sales_by_venue(city)` under `venues`?")


# --- exercise 4: optimistic locking ------------------------------------------------------------------

ex4 = chapter.exercise(
    "Optimistic locking on events",
    hints=[
        "Two lines in `class Event`: a column `version: Mapped[int] = mapped_column(server_default=\"1\")`, and "
        "`__mapper_args__ = {\"version_id_col\": version}`, which tells SQLAlchemy to count it up on every "
        "`UPDATE` and to add `AND version = <the version read>` to the `UPDATE`'s `WHERE`.",
        "`__mapper_args__` names the column object itself, the `version` defined just above it in the class "
        "body, not the string `\"version\"`. So the column needs its `= mapped_column(...)`: a bare annotation, "
        "`version: Mapped[int]`, defines no name in the class body, and `__mapper_args__` then raises `NameError`.",
        "`version: Mapped[int] = mapped_column(server_default=\"1\")` and then "
        "`__mapper_args__ = {\"version_id_col\": version}`. The error handler (given in `errors.py`) turns "
        "`StaleDataError` into 409.",
    ],
)


@ex4.step("`Event.version` is a required whole-number column, and the mapper's `version_id_col`")
def _version_column(t):
    models = t.module("tickethub.models")
    Event = models.Event
    column = Event.__table__.c.get("version")
    t.require(column is not None, "a column `version` in `Event`",
              f"`events` has the columns {', '.join(f'`{c.name}`' for c in Event.__table__.c)}",
              "Did you add `version: Mapped[int] = mapped_column(...)` to `class Event`?")
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = None
    t.require(kind is int and not column.nullable, "`version` is an `int` column, `NOT NULL`",
              f"a `{column.type!r}` column, {'nullable' if column.nullable else 'NOT NULL'}",
              "Is it annotated `Mapped[int]` (not `Mapped[int | None]`)?")
    used = sa.inspect(Event).version_id_col
    t.require(used is column, "`__mapper_args__ = {\"version_id_col\": version}` in `Event`",
              "the mapper has no version column" if used is None else f"the mapper counts `{used.name}`",
              "A column alone changes nothing: SQLAlchemy only checks it when the mapper names it. Did you add "
              "`__mapper_args__ = {\"version_id_col\": version}` inside `class Event`?")


@ex4.step("a new event has version 1, and a committed change makes it 2")
def _versions_count(t):
    app_on_check_database(t, "events", "bookings")
    with t.app.app_context():
        event = t.Event(name=t.word("Gala ").title(), capacity=50, seats_left=50)
        t.db.session.add(event)
        t.db.session.commit()
        t.event_id = event.id
    versions = [_version_of(t, t.event_id)]
    with t.app.app_context():
        t.db.session.get(t.Event, t.event_id).name = t.word("Gala ").title()
        t.db.session.commit()
    versions.append(_version_of(t, t.event_id))
    t.require(versions == [1, 2], "version 1 for the new event, 2 once it was changed",
              f"versions {versions}", "Did you set `version_id_col` (SQLAlchemy then counts by itself), and no "
              "`version_id_generator=False`?")


def _version_of(t, event_id):
    table = t.Event.__table__
    with t.peek.connect() as connection:
        return connection.execute(sa.select(table.c.version).where(table.c.id == event_id)).scalar_one()


@ex4.step("of two sessions that read the same event, the second to commit gets `StaleDataError`")
def _two_sessions(t):
    first, second = t.word("First ").title(), t.word("Second ").title()
    with Session(t.engine) as a, Session(t.engine) as b:
        event_a, event_b = a.get(t.Event, t.event_id), b.get(t.Event, t.event_id)
        event_a.name = first
        a.commit()
        event_b.name = second
        _, error = _raised(b.commit)
        b.rollback()
    with t.peek.connect() as connection:
        name = connection.execute(sa.select(t.Event.__table__.c.name).where(t.Event.__table__.c.id == t.event_id)).scalar_one()
    t.require(isinstance(error, StaleDataError) and name == first,
              f"the second commit raises `StaleDataError`, and the first one's name {first!r} stays",
              f"{'no error' if error is None else type(error).__name__}; the name is {name!r}",
              "Is `version_id_col` set in `__mapper_args__`? Without it, the second `UPDATE` overwrites the first.")


class _Meanwhile:
    """Commit `change` on the check's own connection just before the app's next UPDATE of `events`."""

    def __init__(self, t, change):
        self.t, self.change, self.done = t, change, False

    def _hook(self, connection, cursor, statement, parameters, context, executemany):
        if not self.done and re.match(r"\s*UPDATE events\b", statement, re.I):
            self.done = True
            with self.t.peek.begin() as other:
                self.change(other)

    def __enter__(self):
        sa.event.listen(self.t.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.t.engine, "before_cursor_execute", self._hook)


def _bump(t) -> dict:
    version = sa.inspect(t.Event).version_id_col
    return {version.key: version + 1} if version is not None else {}


def _request(t, method, url, **kwargs):
    try:
        return getattr(t.client, method)(url, **kwargs), None
    except StaleDataError as error:
        return None, error


@ex4.step("`PATCH /api/events/<id>` answers 409 when another request changed the event first, and keeps its change")
def _stale_patch(t):
    table = t.Event.__table__
    theirs, ours = t.word("Theirs ").title(), t.word("Ours ").title()

    def rename(connection):
        connection.execute(sa.update(table).where(table.c.id == t.event_id).values(name=theirs, **_bump(t)))

    with _Meanwhile(t, rename) as meanwhile:
        response, error = _request(t, "patch", f"/api/events/{t.event_id}", json={"name": ours})
    t.require(meanwhile.done, "the request sends an `UPDATE` of `events`", "it sent none",
              "Does `PATCH /api/events/<id>` still change the event (chapter 03's `update_event`)?")
    t.require(error is None, "409 Conflict", "it answered 500: `StaleDataError` reached Flask unhandled",
              "Did you run the cell that writes `tickethub/errors.py`? Its handler turns `StaleDataError` into 409.")
    t.json(response, 409, "a JSON error: someone else changed the event first",
           "Is `version_id_col` set? Without it, your `UPDATE` quietly overwrites the other request's change.")
    with t.peek.connect() as connection:
        name = connection.execute(sa.select(table.c.name).where(table.c.id == t.event_id)).scalar_one()
    t.require(name == theirs, f"the other request's name {theirs!r} kept", f"the name is {name!r}",
              "Is `version_id_col` set in `__mapper_args__`?")


@ex4.step("two bookings racing for the last seats never overbook: the late one gets 409")
def _race_booking(t):
    table = t.Event.__table__
    capacity = t.rng.randrange(4, 9)
    event_id = _insert(t, t.Event, [{"name": t.word("Last ").title(), "capacity": capacity, "seats_left": capacity}])[0]
    theirs = t.rng.randrange(2, capacity - 1)
    ours = capacity - theirs + t.rng.randrange(1, theirs + 1)  # enough when read, too many once theirs is booked

    def book(connection):
        connection.execute(sa.insert(t.Booking.__table__).values(event_id=event_id, email=f"{t.word()}@example.com",
                                                                 seats=theirs))
        connection.execute(sa.update(table).where(table.c.id == event_id)
                           .values(seats_left=table.c.seats_left - theirs, **_bump(t)))

    with _Meanwhile(t, book):
        response, error = _request(t, "post", f"/api/events/{event_id}/bookings",
                                   json={"email": f"{t.word()}@example.com", "seats": ours})
    t.require(error is None, "409 Conflict", "it answered 500: `StaleDataError` reached Flask unhandled",
              "Did you run the cell that writes `tickethub/errors.py`?")
    with t.peek.connect() as connection:
        left = connection.execute(sa.select(table.c.seats_left).where(table.c.id == event_id)).scalar_one()
        sold = connection.execute(sa.select(sa.func.coalesce(sa.func.sum(t.Booking.__table__.c.seats), 0))
                                  .where(t.Booking.__table__.c.event_id == event_id)).scalar_one()
    t.require(response.status_code == 409 and sold == theirs and left == capacity - theirs,
              f"409 for {ours} seats booked while another request took {theirs} of {capacity}; "
              f"{theirs} seats sold, {capacity - theirs} left",
              f"{response.status_code}; {sold} seats sold, `seats_left` {left}",
              "Is `version_id_col` set? Without it, the late booking writes the seat count it computed from an old "
              "read, the other booking's seats are forgotten, and the event is overbooked.")


# --- exercise 5: the index migration -----------------------------------------------------------------

ex5 = chapter.exercise(
    "A migration that adds the indexes",
    hints=[
        "A migration changes the schema with `op`: `op.create_index(name, table, [columns])` in `upgrade()`, "
        "and `op.drop_index(name, table_name=table)` in `downgrade()`, in the reverse order.",
        "The names must be those `models.py` gets from the naming convention: `ix_bookings_email` on "
        "`bookings`, column `email`, and `ix_events_venue_id` on `events`, column `venue_id`.",
        "`op.create_index(\"ix_bookings_email\", \"bookings\", [\"email\"])` and "
        "`op.create_index(\"ix_events_venue_id\", \"events\", [\"venue_id\"])`; then "
        "`op.drop_index(\"ix_events_venue_id\", table_name=\"events\")` and "
        "`op.drop_index(\"ix_bookings_email\", table_name=\"bookings\")`.",
    ],
)

INDEXES = {"ix_bookings_email": ("bookings", ["email"]), "ix_events_venue_id": ("events", ["venue_id"])}
LOOKUPS = {
    "ix_bookings_email": ("SELECT id, event_id, seats FROM bookings WHERE email = :value", "ada@example.com"),
    "ix_events_venue_id": ("SELECT id, name FROM events WHERE venue_id = :value", 1),
}


def _load_migration(t):
    path = t.project / MIGRATION
    spec = importlib.util.spec_from_file_location("check_0004_indexes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _migrate(t, direction: str) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    with t.peek.begin() as connection:
        context = MigrationContext.configure(connection)
        with Operations.context(context):
            getattr(t.migration, direction)()


def _fresh(t):
    """An engine whose every connection is new on SQLite: an SQLite connection that read the schema before
    a change may not see the change (and keeps the plans it made before it). PostgreSQL has no such
    memory, so there the check's pooled engine does."""
    if getattr(t, "fresh", None) is None:
        sqlite = t.peek.dialect.name == "sqlite"
        t.fresh = sa.create_engine(t.database_url(), poolclass=sa.pool.NullPool) if sqlite else t.peek
    return t.fresh


PG_INDEXES = sa.text("""
    SELECT i.relname, t.relname, a.attname
    FROM pg_index AS x
    JOIN pg_class AS i ON i.oid = x.indexrelid
    JOIN pg_class AS t ON t.oid = x.indrelid
    JOIN pg_namespace AS n ON n.oid = t.relnamespace
    JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, position) ON true
    JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = k.attnum
    WHERE n.nspname = current_schema() AND t.relname IN ('bookings', 'events')
    ORDER BY i.relname, k.position
""")
SQLITE_INDEXES = sa.text("""
    SELECT m.name, m.tbl_name, c.name
    FROM sqlite_master AS m, pragma_index_info(m.name) AS c
    WHERE m.type = 'index' AND m.tbl_name IN ('bookings', 'events')
    ORDER BY m.name, c.seqno
""")


def _indexes(t) -> dict:
    """The indexes of `bookings` and `events`: {name: (table, [columns])}, read from the database's catalogue.

    (Asked directly rather than through SQLAlchemy's inspector, which is slow to start on PostgreSQL.)
    """
    with _fresh(t).connect() as connection:
        query = SQLITE_INDEXES if connection.dialect.name == "sqlite" else PG_INDEXES
        found: dict = {}
        for name, table, column in connection.execute(query):
            found.setdefault(name, (table, []))[1].append(column)
        return found


def _plan(t, sql: str, value) -> list[str]:
    """The database's plan for `sql`, asked on a new connection (an SQLite connection can repeat an old plan).

    On PostgreSQL, scans are priced out of reach for this one transaction (`enable_seqscan = off`): the
    check's tables are tiny, and on a tiny table PostgreSQL rightly prefers to read it whole.
    """
    with _fresh(t).begin() as connection:
        if connection.dialect.name == "sqlite":
            return [row[3] for row in connection.execute(sa.text("EXPLAIN QUERY PLAN " + sql), {"value": value})]
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        return [row[0] for row in connection.execute(sa.text("EXPLAIN " + sql), {"value": value})]


def _uses(plan: list[str], name: str) -> bool:
    return any(re.search(rf"\b{re.escape(name)}\b", line) for line in plan)


@ex5.step("`migrations/versions/0004_indexes.py` is revision `0004_indexes`, after `0003_event_version`")
def _migration_file(t):
    t.require((t.project / MIGRATION).exists(), f"the file `{MIGRATION}`", "there is no such file",
              "Did you run the exercise cell?")
    t.migration = _load_migration(t)
    ids = (getattr(t.migration, "revision", None), getattr(t.migration, "down_revision", None))
    t.require(ids == ("0004_indexes", "0003_event_version"), "`revision = \"0004_indexes\"` and "
              "`down_revision = \"0003_event_version\"`", f"{show(ids)}", "Did you keep the given revision ids?")
    for name in ("upgrade", "downgrade"):
        t.require(callable(getattr(t.migration, name, None)), f"a function `{name}()`", "it is missing",
                  f"Did you keep the line `def {name}():`?")


@ex5.step("`upgrade()` creates `ix_bookings_email` on `bookings (email)` and `ix_events_venue_id` on `events (venue_id)`")
def _migration_upgrade(t):
    models = t.module("tickethub.models")
    t.Venue, t.Event, t.Booking = models.Venue, models.Event, models.Booking
    t.peek = sa.create_engine(t.database_url())
    speed_up(t.peek)
    with t.peek.begin() as connection:  # the schema as migration 0003 leaves it: no indexes yet
        t.Event.metadata.create_all(connection)
        for name in INDEXES:
            connection.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
    _add_events(t, [_add_venues(t, [t.word().title()])[0]["id"], None])
    _migrate(t, "upgrade")
    found = _indexes(t)
    for name, (table, columns) in INDEXES.items():
        t.require(found.get(name) == (table, columns), f"the index `{name}` on `{table}` ({', '.join(columns)})",
                  f"the indexes of `bookings` and `events`: {show(sorted(found.items()), 200)}",
                  f"Did you write `op.create_index(\"{name}\", \"{table}\", {json.dumps(columns)})` in `upgrade()`? The name must "
                  "be the one `models.py` gets from the naming convention, or autogenerate will want to change it.")


@ex5.step("the query plans use them: `… FROM bookings WHERE email = ?` and `… FROM events WHERE venue_id = ?`")
def _migration_plans(t):
    for name, (sql, value) in LOOKUPS.items():
        plan = _plan(t, sql, value)
        t.require(_uses(plan, name), f"the plan of `{sql.replace(':value', '?')}` uses `{name}`",
                  f"the plan: `{' / '.join(line.strip() for line in plan)[:200]}`",
                  f"Does `{name}` index exactly the column in the `WHERE`? A composite index whose first column is "
                  "another one cannot serve this lookup.")


@ex5.step("`models.py` declares the same two indexes, so autogenerate finds nothing to do")
def _migration_models(t):
    declared = {}
    for model in (t.Booking, t.Event):
        for index in model.__table__.indexes:
            declared[index.name] = (model.__tablename__, [c.name for c in index.columns])
    missing = [name for name, where in INDEXES.items() if declared.get(name) != where]
    t.require(not missing, "`index=True` on `Booking.email` and `Event.venue_id` in `models.py`",
              f"`models.py` declares {show(sorted(declared))}",
              "Did you run exercise 4's cell? The `models.py` it writes declares both indexes.")


@ex5.step("`downgrade()` drops both indexes (and the plans no longer use them); `upgrade()` works again after it")
def _migration_downgrade(t):
    _migrate(t, "downgrade")
    left = [name for name in INDEXES if name in _indexes(t)]
    t.require(not left, "no `ix_bookings_email` or `ix_events_venue_id` after `downgrade()`",
              f"still there: {', '.join(f'`{n}`' for n in left)}",
              "Did you write `op.drop_index(\"...\", table_name=\"...\")` for each index in `downgrade()`?")
    for name, (sql, value) in LOOKUPS.items():
        t.require(not _uses(_plan(t, sql, value), name), f"the plan no longer uses `{name}`", "it still does",
                  "Did `downgrade()` drop the index?")
    _migrate(t, "upgrade")
    t.require(set(INDEXES) <= set(_indexes(t)), "both indexes back after `upgrade()` again",
              show(sorted(_indexes(t))), "Does `downgrade()` leave the schema as `upgrade()` found it?")


# --- warming up the check server -------------------------------------------------------------------


@chapter.warm_up
def _warm_up() -> None:
    """Run this chapter's SQLAlchemy features once in the check server, so each forked check starts warm."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy.orm import joinedload, raiseload, selectinload

    class Base(DeclarativeBase):
        pass

    class Parent(Base):
        __tablename__ = "parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(20))
        version: Mapped[int] = mapped_column()
        children: Mapped[list["Child"]] = relationship(back_populates="parent")
        __mapper_args__ = {"version_id_col": version}

    class Child(Base):
        __tablename__ = "child"
        id: Mapped[int] = mapped_column(primary_key=True)
        parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("parent.id"), index=True)
        parent: Mapped[Parent | None] = relationship(back_populates="children")

    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Parent(name="a", children=[Child(), Child()]))
        session.commit()
        parent = session.execute(sa.select(Parent).options(selectinload(Parent.children), raiseload("*"))).scalar_one()
        parent.name = "b"
        session.commit()
        session.execute(sa.select(Child).options(joinedload(Child.parent))).scalars().all()
        session.execute(sa.text("SELECT count(*) AS n FROM child WHERE parent_id = :p"), {"p": 1}).mappings().all()
        session.execute(sa.select(Parent.name, sa.func.count(Child.id)).outerjoin(Parent.children)
                        .group_by(Parent.id, Parent.name)).all()
    with engine.begin() as connection:
        with Operations.context(MigrationContext.configure(connection)):
            alembic.op.create_index("ix_child_id", "child", ["id"])
            alembic.op.drop_index("ix_child_id", table_name="child")
        sa.inspect(connection).get_indexes("child")
        connection.execute(sa.text("EXPLAIN QUERY PLAN SELECT id FROM child WHERE parent_id = 1")).all()
    engine.dispose()
    if os.environ.get("DATABASE_URL", "").startswith(("postgresql", "postgres:")):
        import psycopg  # noqa: F401
        import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401


setup, reset = chapter.setup, chapter.reset
