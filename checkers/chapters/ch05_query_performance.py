"""Checks for chapter 05: query performance (N+1, eager loading, raw SQL, optimistic locking, indexes).

Every check gets its own empty database (`t.database_url()`: SQLite, or a PostgreSQL schema). The SQLAlchemy and Alembic
work runs in the learner's process (`dbkit`'s probes and this module's); query counts, SQL and plans come back as plain
data, read from the database's own answers, so the same checks hold on both.
"""
from __future__ import annotations

import ast
import re
from types import SimpleNamespace as State

from flask import Blueprint

from ..engine.judge import show
from ..notebook.api import Bug, Chapter, Correct
from . import dbkit
from .dbkit import Refusal

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

BARE_VERSION = ("`version: Mapped[int]` with no `= mapped_column(...)` is an annotation only: it defines no name "
                "`version` in the class body, so `__mapper_args__ = {\"version_id_col\": version}` finds none. Write "
                "`version: Mapped[int] = mapped_column(server_default=\"1\")`, above the `__mapper_args__`.")
VERSION_TEXT = ("`version_id_col` takes the column itself, the `version` defined just above it in `class Event`, not its "
                "name as text: `__mapper_args__ = {\"version_id_col\": version}`, with no quotes.")
# a mistake in exercise 5's models.py that breaks the import of every exercise's models, with the hint for its cause
MODEL_ERRORS = {"NameError": lambda error: BARE_VERSION if "version_id_col" in (error.where or "") else None}

chapter = Chapter(__name__, "Query performance", errors=MODEL_ERRORS)
chapter.warm_up(dbkit.warm_up)
chapter.warm_up(dbkit.warm_up_performance)

VENUES, EVENTS, BOOKINGS = "venues", "events", "bookings"
REPORTS, MIGRATION = "tickethub/reports.py", "migrations/versions/0004_indexes.py"
OVERVIEW = "tickethub/events/overview.py"


def _first(call):
    """A call's value; what it raised (where the step expects no exception) escapes as the learner's ERROR."""
    if call.error is not None:
        raise call.error
    return call.value


# --- exercise 1: the overview ------------------------------------------------------------------------

ex1 = chapter.exercise(
    "An overview in a constant number of queries",
    hints=[
        "Looping over events and touching `event.venue` and `event.bookings` sends one query per event: the N+1 problem. "
        "Either load the relationships with the events (`joinedload(Event.venue)` and `selectinload(Event.bookings)` in "
        "`.options(...)`), or ask the database for exactly the columns the overview shows, the booking count included, "
        "in one query.",
        "One query: select `Event.id`, `Event.name`, `Venue.name.label(\"venue\")` and a count of bookings, with "
        "`.outerjoin(Event.venue)`, so that events without a venue stay. The count can be a correlated subquery, "
        "`db.select(func.count(Booking.id)).where(Booking.event_id == Event.id).scalar_subquery()`, labelled "
        "`\"bookings\"`. Order by `Event.id`, take one page with `.limit(per_page).offset((page - 1) * per_page)`, "
        "and turn the rows into dicts with `.mappings()`.",
        "`bookings = db.select(func.count(Booking.id)).where(Booking.event_id == Event.id).scalar_subquery()`, then "
        "`statement = db.select(Event.id, Event.name, Venue.name.label(\"venue\"), bookings.label(\"bookings\"))"
        ".outerjoin(Event.venue).order_by(Event.id).limit(per_page).offset((page - 1) * per_page)` and `return "
        "[dict(row) for row in "
        "db.session.execute(statement).mappings()]`.",
    ],
)
ex1.defines("tickethub.events.overview", functions=["events_overview"])
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100  # chapter 03's `pagination.py`
PAGED = "Do you take one page, `.limit(per_page).offset((page - 1) * per_page)`, after `.order_by(Event.id)`? Page 1 " \
    "starts at the first event: the offset is `(page - 1) * per_page`."
KEYS = "Are the keys exactly `id`, `name`, `venue` and `bookings`, in event id order?"
ROW_HINTS = {"id": KEYS, "bookings": "Is `bookings` the number of bookings, and 0 for an event without any? With a `LEFT "
             "JOIN` and `count(*)`, an event without bookings still has one row and counts 1: count `Booking.id`, which is "
             "NULL there.", "venue": "Is `venue` the venue's name, and `None` for an event without a venue?"}


def _overview(t, s, events: int) -> int:
    """Add events until there are `events`, run `events_overview(1, MAX)` (one page of them all), compare every row; the
    number of queries it sent."""
    n = events - len(s.expected)
    venues = dbkit.venues(t, [t.word().title() for _ in range(n - 1)])  # the first two events share a venue, the last has none
    venue_ids = [venues[0]["id"]] * 2 + [v["id"] if t.rng.random() > 0.2 else None for v in venues[1:-1]] + [None]
    counts = [0, t.rng.randrange(2, 4)] + [t.rng.randrange(0, 4) for _ in range(n - 2)]
    names = {v["id"]: v["name"] for v in venues}
    s.expected += [{"id": e["id"], "name": e["name"], "venue": names.get(e["venue_id"]), "bookings": len(e["seats"])}
                   for e in dbkit.events(t, venue_ids, counts)]
    with dbkit.recording(t, s.check.engine) as seen:
        result = _first(dbkit.attempt(t, s.check.app, s.overview, 1, MAX_PER_PAGE))
    _rows(t, result, s.expected, (1, MAX_PER_PAGE))
    return len(seen.statements)


def _rows(t, result, wanted: list[dict], page: tuple) -> None:
    t.require(isinstance(result, list), f"`events_overview{page}` returns a list (of {len(wanted)} dicts)",
              lambda: f"it returned {show(result)}", "Do you `return` the list of dicts at the end?")
    t.require(len(result) == len(wanted), f"one dict per event of `events_overview{page}`: {len(wanted)} of them",
              lambda: f"{len(result)} dicts" + (f", the first {show(result[0], 90)}" if result else ""),
              PAGED if wanted and not result else "Does a `JOIN` drop events without a venue? Use "
              "`.outerjoin(Event.venue)` (a `LEFT OUTER JOIN`). Or do you join the bookings, so that an event comes back "
              "once per booking? Group by the event, or count in a subquery.")
    for seen, want in zip(result, wanted):
        hint = "Is each item a `dict`? Rows from `.mappings()` are read-only mappings, not dicts: `[dict(row) for row in " \
            "result.mappings()]`." if not isinstance(seen, dict) else next((h for k, h in ROW_HINTS.items() if seen.get(
                k) != want[k]), "Are `id` and `bookings` whole numbers (`int`)?" if seen == want else KEYS)
        t.require(seen == want and type(seen["id"]) is int and type(seen["bookings"]) is int,
                  f"event {want['id']} as {show(want)}", lambda: show(seen), hint)


@ex1.step("one page of every event lists each with its venue's name and its number of bookings, in id order (`[]` for none)")
def _overview_small(t, names):
    s = State(overview=names.events_overview, check=dbkit.check_app(t, "events"), expected=[], small=t.rng.randrange(4, 8))
    for page in ((1, DEFAULT_PER_PAGE), (2, DEFAULT_PER_PAGE)):  # no events: every page is empty
        _rows(t, _first(dbkit.attempt(t, s.check.app, s.overview, *page)), [], page)
    s.queries = _overview(t, s, s.small)
    return s


@ex1.step("the number of queries stays the same when there are many more events")
def _overview_large(t, s):
    large = t.rng.randrange(25, 45)
    queries = _overview(t, s, large)
    t.require(queries == s.queries, "the same number of queries for many events as for a few",
              f"{s.queries} queries for {s.small} events, {queries} for {large}",
              "Do you touch `event.venue` or `event.bookings` in a loop? Each first touch of a lazy relationship sends a "
              "query for that one event. Load them with the events (`joinedload`, `selectinload`), or count the bookings "
              "in the same query as the events.")
    return s


def _page(t, s, page: int, per_page: int) -> None:
    """`events_overview(page, per_page)` gives the rows of that page, in no more queries than a page of all events."""
    with dbkit.recording(t, s.check.engine) as seen:
        result = _first(dbkit.attempt(t, s.check.app, s.overview, page, per_page))
    wanted = s.expected[(page - 1) * per_page:page * per_page]
    t.require(isinstance(result, list) and [row.get("id") if isinstance(row, dict) else row for row in result] == [
        row["id"] for row in wanted], f"`events_overview({page}, {per_page})` gives the events "
        + (f"{wanted[0]['id']} to {wanted[-1]['id']}" if wanted else "of no page: `[]`") + f" of {len(s.expected)}",
        lambda: "events " + show([row.get("id") for row in result], 120) if isinstance(result, list) and all(
            isinstance(row, dict) for row in result) else show(result, 120), PAGED)
    _rows(t, result, wanted, (page, per_page))
    t.require(any(re.search(r"\bLIMIT\b", sql, re.I) for sql in seen.sql), "the page taken by the database: a `LIMIT`",
              lambda: "no `LIMIT` in " + "; ".join(f"`{dbkit.excerpt(sql)}`" for sql in seen.sql), "Do you read every "
              "event and slice the list in Python? Every page then reads the whole table. Let the database do it: "
              "`.limit(per_page).offset((page - 1) * per_page)`.")
    t.require(len(seen.statements) <= s.queries, f"at most {s.queries} queries for a page, as for one page of all events",
              f"{len(seen.statements)} for page {page} of {per_page} events", "Does the number of queries depend on the "
              "page? Page the events' statement itself, with `.limit()` and `.offset()`.")


@ex1.step("pages: `per_page` events from the `(page - 1) * per_page`-th, the rest on the last page, `[]` past the end")
def _overview_pages(t, s):
    total = len(s.expected)
    per_page = next(n for n in range(t.rng.randrange(3, 8), total) if total % n)  # a last page that is not full
    last = -(-total // per_page)
    for page, size in ((1, per_page), (t.rng.randrange(2, last), per_page), (last, per_page), (last + 1, per_page),
                       (1, total), (2, total), (total, 1)):  # also one page of exactly all of them, and pages of one
        _page(t, s, page, size)
    return s


@ex1.step("`GET /api/events/overview?page=&per_page=` answers chapter 03's page: `items`, `page`, `per_page`, `total`, "
          "`pages` (the route is given)")
def _overview_route(t, s):
    total, per_page = len(s.expected), t.rng.randrange(3, 8)
    pages = -(-total // per_page)
    for query, page, size in (({}, 1, DEFAULT_PER_PAGE), ({"page": pages, "per_page": per_page}, pages, per_page)):
        body = t.json(s.check.client.get("/api/events/overview", query_string=query), 200, "a page of the overview",
                      "Did you run the cells that write `tickethub/pagination.py` and `tickethub/events/routes.py`? They "
                      "add `page_args()`, `page_json()` and the route.")
        wanted = {"items": s.expected[(page - 1) * size:page * size], "page": page, "per_page": size, "total": total,
                  "pages": -(-total // size)}
        t.require(body == wanted, f"`{show({**wanted, 'items': '[...]'})}` with {len(wanted['items'])} items",
                  lambda: show(body, 200), "Does `events_overview(page, per_page)` take the page first, then its size, "
                  "and return plain dicts, ready for JSON?")


# --- exercise 2: a regression test for the overview ---------------------------------------------------

ex2 = chapter.exercise(
    "A regression test for the overview",
    hints=[
        "A fixture that `yield`s sets up, hands over, and cleans up after the test: `with app.app_context(): engine = "
        "db.engine`, then `with count_queries(engine) as sent: yield sent`. A test asks for it by naming it as a "
        "parameter: `def test_...(app, client, queries):`.",
        "In the test, for two sizes (say 3 events, then 27 more): `add_events(app, n)`, then `queries.clear()`, then "
        "`client.get(\"/api/events/overview\")`, and keep `len(queries)`. Then `assert` that the two counts are equal "
        "(or that the second is no larger): a growing count is an N+1.",
        "`counts = []`, then `for events in (3, 27):` `add_events(app, events)`, `queries.clear()`, `response = "
        "client.get(\"/api/events/overview\")`, `assert response.status_code == 200`, `counts.append(len(queries))`; "
        "after the loop, `assert counts[0] == counts[1]`.",
    ],
)
QUERY_TESTS, ROUTES = "tests/test_overview_queries.py", "tickethub/events/routes.py"
ROWS = "    return [dict(row) for row in db.session.execute(statement).mappings()]\n"  # the reference's last line
OBJECTS = ("    events = db.session.execute({})\n    return [{{\"id\": e.id, \"name\": e.name, \"venue\": e.venue.name if "
           "e.venue else None, \"bookings\": len(e.bookings)}}\n            for e in events.scalars()]\n")
PAGE_OF_EVENTS = "db.select(Event).order_by(Event.id).limit(per_page).offset((page - 1) * per_page)"
GROWS = ("This overview sends two more queries for each event on the page. Does your test assert that the number of "
         "queries does not grow, between a page of a few events and a page of many? And does its fixture record them?")
ex2.tests_catch(QUERY_TESTS, hint=(
    "The reference sends the same two queries for every page of the overview. Does your count include the INSERTs of "
    "`add_events` (call `queries.clear()` just before the request)? Does the test assert what must stay true (the count "
    "does not grow), rather than a number?"), accepts=[
    Correct("the overview loads its events with `joinedload` and `selectinload`: three queries a page, not two",
            OVERVIEW, ROWS, OBJECTS.format(PAGE_OF_EVENTS.replace(
                ".order_by", ".options(joinedload(Event.venue), selectinload(Event.bookings)).order_by")),
            hint="Does your test assert an exact number of queries? A correct overview may take one, two or three; what "
                 "must not happen is a number that grows with the events. Compare a few events with many, both pages "
                 "with events on them (`selectinload` sends nothing for an empty page), or assert a bound."),
], bugs=[
    Bug("the overview loads each event's venue and bookings lazily again, a query per event (N+1)", OVERVIEW, ROWS,
        OBJECTS.format(PAGE_OF_EVENTS), hint=GROWS),
    Bug("the route counts each event's bookings once more as it answers, a query per event", ROUTES,
        "    return page_json(events_overview(page, per_page), page, per_page, count_events())\n",
        "    items = events_overview(page, per_page)\n    for item in items:\n        item[\"bookings\"] = db.session.scalar("
        "db.select(func.count(Booking.id)).where(Booking.event_id == item[\"id\"]))\n"
        "    return page_json(items, page, per_page, count_events())\n",
        more=((ROUTES, "from ..pagination import", "from sqlalchemy import func\n\nfrom ..db import db\n"
                                                   "from ..models import Booking\nfrom ..pagination import"),),
        hint="This route sends one more query for each event on the page. A test notices only if it requests `GET "
             "/api/events/overview` itself (`events_overview()` alone misses the route), and compares a page of a few "
             "events with a page of many: on a page of one event, one query more is just one."),
    Bug("the overview counts the bookings in its query but loads each venue lazily, a query per venue (N+1)",
        OVERVIEW, ROWS, "    rows = db.session.execute(" + PAGE_OF_EVENTS.replace("(Event)", "(Event, bookings.label(\"bookings\"))")
        + ")\n    return [{\"id\": e.id, \"name\": e.name, \"venue\": e.venue.name if e.venue else None, \"bookings\": n}"
        " for e, n in rows]\n",
        hint="This overview sends one more query for each venue on the page: the session keeps each venue it loaded "
             "(its identity map), so the next event at that venue costs nothing. Are the events of your test at several "
             "venues? A page at one venue looks constant; `add_events` puts three events at each new venue."),
])


# --- exercise 3: the detail page ---------------------------------------------------------------------

ex3 = chapter.exercise(
    "An event page that loads exactly what it shows",
    hints=[
        "Build one `db.select(Event).where(Event.id == event_id)` with `.options(...)`: `joinedload(Event.venue)` (a "
        "many-to-one: the venue's columns join the event's row), `selectinload(Event.bookings)` (a collection: one more "
        "query with `IN`), and `raiseload(\"*\")` for everything else.",
        "Run it with `db.session.execute(statement).scalar_one_or_none()`; `None` means there is no such event: "
        "`raise EventNotFound(event_id)`. `joinedload` must stay an outer join (the default for an optional "
        "relationship), or events without a venue disappear.",
        "`statement = db.select(Event).where(Event.id == event_id).options(joinedload(Event.venue), "
        "selectinload(Event.bookings), raiseload(\"*\"))`, `event = db.session.execute(statement).scalar_one_or_none()`, "
        "`if event is None: raise EventNotFound(event_id)`, `return event`.",
    ],
)
ex3.defines("tickethub.events.detail", functions=["event_detail"])
PROBE = "check_probe"  # a relationship the check adds to Event, which event_detail() does not load
SHOWN = {"id": None, "venue": ["name"], "bookings": ["email", "seats"]}  # what the page reads of the event
JOINED = ("the bookings loaded by a query of their own (`selectinload`)", "A `JOIN` to a collection sends the event's (and "
          "the venue's) columns again with every booking. Did you use `joinedload(Event.bookings)`? Use "
          "`selectinload(Event.bookings)`.")
INNER = "Did you write `joinedload(Event.venue, innerjoin=True)`, or `.join(Event.venue)`? An inner join drops an event " \
    "without a venue."
QUERIES = (  # (a statement it must not send, what it shows, expected, hint)
    (r"\bFROM \(SELECT .*\bJOIN bookings\b", "", "the bookings loaded with one `IN` query (`selectinload`)",
     "That is `subqueryload`: it repeats the first query inside the second. `selectinload(Event.bookings)` sends just "
     "the event ids: simpler, and usually faster."),
    (r"\bJOIN bookings\b", "they were joined to the event: ", *JOINED),
    (r"\bFROM venues\b", "a query of its own: ", "the venue loaded in the event's query, with a `JOIN`", "For a "
     "many-to-one such as `Event.venue`, `joinedload(Event.venue)` adds the venue's columns to the event's row: no extra "
     "round trip. Did you use `selectinload` or leave it lazy?"),
)
SENT = (  # (what each of the two statements must say, expected, hint)
    ((r"\bFROM events\b", r"\bJOIN venues\b"), "the first query reads `events` `JOIN` `venues`",
     "Is `joinedload(Event.venue)` among the options of your `db.select(Event)`?"),
    ((r"\bFROM bookings\b", r"\bIN\s*\("), "the second query reads `bookings` with `WHERE bookings.event_id IN (…)`",
     "Is `selectinload(Event.bookings)` among the options?"),
)


def _loaded(t, s, event: dict):
    """`event_detail(id)` in a fresh app context, then what the page reads of it: the `Call`, those values, the SQL sent."""
    with dbkit.recording(t, s.check.engine) as seen, dbkit.app_context(t, s.check.app):
        call = t.attempt(s.detail, event["id"])
        shown = dbkit.snapshot(t, call.value, SHOWN, refusable=True) if call.returned else None
    if call.error is not None and call.error.isa("InvalidRequestError") and "unique()" in call.error.message:
        t.fail(JOINED[0], "`InvalidRequestError`: a result with joined eager loads against a collection needs `.unique()`",
               JOINED[1])
    if call.error is not None and call.error.isa(s.EventNotFound) and event["venue_id"] is None:
        t.fail(f"{call.text} finds event {event['id']}, which has no venue", "it raised `EventNotFound`", INNER)
    _first(call)
    if isinstance(shown, Refusal) and "lazy='raise'" in shown.message:
        name = "bookings" if shown.message.startswith("event.bookings") else "venue"
        t.fail("the venue and the bookings loaded by `event_detail`, ready for the page", f"`event.{name}` was not loaded: "
               "`raiseload(\"*\")` refused to load it lazily", "`raiseload(\"*\")` did its job: it caught a relationship the "
               "page needs but the query does not load. Did you add "
               f"`{'selectinload(Event.bookings)' if name == 'bookings' else 'joinedload(Event.venue)'}` to the options?")
    if isinstance(shown, dict):
        shown = {**shown, "venue": (shown["venue"] or {}).get("name"),
                 "bookings": sorted(tuple(b.values()) for b in shown["bookings"] or [])}
    return call, shown if isinstance(shown, dict) else None, seen.sql


@ex3.step("it returns the event, with its venue and bookings, and raises `EventNotFound` for an unknown id")
def _detail_returns(t, names):
    dbkit.needs(t, "Event.venue", "Event.bookings", "Booking.event_id", "Booking.email", "Booking.seats")
    models = t.module("tickethub.models")
    dbkit.add_relationship(t, t.get(models, "Event"), PROBE, t.get(models, "Booking"), "event_id")
    s = State(detail=names.event_detail, check=dbkit.check_app(t, "events"),
              EventNotFound=t.get(t.module("tickethub.events.services"), "EventNotFound"))
    s.venue = dbkit.venues(t, [t.word().title()])[0]
    s.events = dbkit.events(t, [s.venue["id"], None], [t.rng.randrange(3, 9), 0])
    call, shown, s.sql = _loaded(t, s, s.events[0])
    wanted = {"id": s.events[0]["id"], "venue": s.venue["name"], "bookings": sorted(
        dbkit.query(t, "SELECT email, seats FROM bookings WHERE event_id = :id", {"id": s.events[0]["id"]}))}
    t.require(t.isa(call.value, s.check.model("Event")) and shown == wanted, f"{call.text} returns that `Event`, with venue "
              f"{s.venue['name']!r} and {len(wanted['bookings'])} bookings", lambda: f"{show(call.value)}: {show(shown, 200)}",
              "Do you select `Event` where `Event.id == event_id`, and return the `Event` (`scalar_one_or_none()`)?")
    t.raises(dbkit.attempt(t, s.check.app, s.detail, t.rng.randrange(10**6, 10**7)), s.EventNotFound,
             hint="When the query finds nothing, do you `raise EventNotFound(event_id)`?")
    return s


@ex3.step("exactly two queries: the event `JOIN`ed with its venue, then its bookings with one `IN` query")
def _detail_queries(t, s):
    for pattern, what, expected, hint in QUERIES:
        found = [sql for sql in s.sql if re.search(pattern, sql, re.I)]
        t.require(not found, expected, lambda: f"{what}`{dbkit.excerpt(found[0])}`", hint)
    t.require(len(s.sql) == 2, "2 queries, whatever the number of bookings",
              lambda: f"{len(s.sql)}: " + "; ".join(f"`{dbkit.excerpt(sql)}`" for sql in s.sql),
              "Did you load the bookings with `selectinload(Event.bookings)` and the venue with `joinedload(Event.venue)`, "
              "in one `db.select(Event)` (no second `db.session.get`)?")
    for sql, (patterns, expected, hint) in zip(s.sql, SENT):
        t.require(all(re.search(pattern, sql, re.I) for pattern in patterns), expected, f"`{dbkit.excerpt(sql)}`", hint)
    return s


@ex3.step("an event without a venue is found too (the venue is an outer join), still in two queries")
def _detail_no_venue(t, s):
    event = s.events[1]
    call, shown, sql = _loaded(t, s, event)
    t.require(shown == {"id": event["id"], "venue": None, "bookings": []} and len(sql) == 2,
              f"{call.text} returns the event, `venue` None, no bookings, in 2 queries",
              lambda: f"{show(call.value)}, {show(shown)}, {len(sql)} queries", INNER)
    return s


@ex3.step("any other relationship raises instead of loading lazily (`raiseload(\"*\")`)")
def _detail_raiseload(t, s):
    with dbkit.app_context(t, s.check.app):
        event = s.detail(s.events[0]["id"])
        with dbkit.recording(t, s.check.engine) as seen:
            touched = dbkit.snapshot(t, event, [PROBE], refusable=True)
    t.require(isinstance(touched, Refusal) and touched.isa("InvalidRequestError") and not seen.statements,
              f"touching `event.{PROBE}`, a relationship the check added to `Event`, raises `InvalidRequestError`",
              "it was loaded lazily, with a query" if not isinstance(touched, Refusal) else f"`{touched.type_name}`",
              "Did you add `raiseload(\"*\")` to the options? Then a relationship nobody asked for (say, one added to "
              "`Event` next year) raises at once instead of sending a query per event.")


# --- exercise 4: the sales report --------------------------------------------------------------------

ex4 = chapter.exercise(
    "A sales report in SQL",
    hints=[
        "Start from the venues of the city and `LEFT JOIN` events, then bookings: `FROM venues AS v LEFT JOIN events AS e "
        "ON e.venue_id = v.id LEFT JOIN bookings AS b ON b.event_id = e.id WHERE v.city = :city`. Group by the venue, "
        "`GROUP BY v.id, v.name`. Run it with `db.session.execute(text(...), {\"city\": city})`.",
        "The joins give one row per booking, so count events with `COUNT(DISTINCT e.id)`, bookings with `COUNT(b.id)` "
        "(which skips the NULLs of a venue or event without bookings), and seats with `COALESCE(SUM(b.seats), 0)`. Name "
        "the columns with `AS venue`, `AS events`, `AS bookings`, `AS seats_sold`, and `ORDER BY seats_sold DESC, v.name`.",
        "`rows = db.session.execute(statement, {\"city\": city}).mappings()` gives dict-like rows: `return [dict(row) for "
        "row in rows]`. Never put `city` into the SQL text (no f-string, no `%`, no `+`): the `:city` placeholder sends "
        "it separately, so it can only ever be compared, never run.",
    ],
)
ex4.defines("tickethub.reports", functions=["sales_by_venue"], bp=Blueprint)
PAYLOADS = ("{city}' OR '1'='1", "{city}' OR 1=1 --", "{city}'; DELETE FROM bookings; --",
            "' UNION SELECT name, 1, 1, 1 FROM venues --")
COUNTS = "SELECT (SELECT count(*) FROM venues), (SELECT count(*) FROM events), (SELECT count(*) FROM bookings)"
TOTAL_HINTS = (  # (the key that differs, the hint)
    ("events", "The join gives one row per booking: `COUNT(e.id)` counts the event once per booking. Did you write "
     "`COUNT(DISTINCT e.id)`?"),
    ("bookings", "`COUNT(*)` counts the row a `LEFT JOIN` keeps for an event without bookings: count `b.id`."),
    ("seats_sold", "With no bookings, `SUM(b.seats)` is NULL (`None`), not 0: did you write `COALESCE(SUM(b.seats), 0)`?"),
    ("venue", "Are the counts whole numbers (`int`), not text or decimals?"),
)
BOUND = "Did you put `city` into the SQL text (an f-string, `%` or `+`)? Pass it as a bound parameter: `:city` in the " \
    "SQL (`text(\"... WHERE v.city = :city ...\")`), and `{\"city\": city}` as the second argument of `execute()`."


def _sales(venues: list[dict], events: list[dict], city: str) -> list[dict]:
    """The report the check expects for `city`, best sellers first."""
    rows = [{"venue": v["name"], "events": len(held := [e["seats"] for e in events if e["venue_id"] == v["id"]]),
             "bookings": sum(map(len, held)), "seats_sold": sum(map(sum, held))} for v in venues if v["city"] == city]
    return sorted(rows, key=lambda row: (-row["seats_sold"], row["venue"]))


@ex4.step("it gives exact totals per venue of the city, best sellers first")
def _report_totals(t, names):
    s = State(report=names.sales_by_venue, check=dbkit.check_app(t, "reports"), city=t.word().title())
    venues = dbkit.venues(t, [s.city] * t.rng.randrange(3, 6) + [t.word().title()] * 2)
    venue_ids, counts = [None], [t.rng.randrange(1, 4)]  # an event without a venue: in no city's report
    for n, venue in enumerate(venues[1:], 1):  # the first venue has no events; the second's have no bookings
        events = t.rng.randrange(1, 4)
        venue_ids += [venue["id"]] * events
        counts += [0 if n == 1 else t.rng.randrange(2 if k == 0 else 0, 5) for k in range(events)]
    events = dbkit.events(t, venue_ids, counts)
    s.expected = _sales(venues, events, s.city)
    if s.expected == sorted(s.expected, key=lambda row: row["venue"]):  # ORDER BY name alone would pass: swap two names
        a, b = s.expected[0]["venue"], s.expected[-1]["venue"]
        dbkit.write(t, *(dbkit.update_op(VENUES, {"name": old}, {"name": new}) for old, new in ((a, a + "X"), (b, a), (a + "X", b))))
        s.expected = _sales([{**v, "name": {a: b, b: a}.get(v["name"], v["name"])} for v in venues], events, s.city)
    result = _first(dbkit.attempt(t, s.check.app, s.report, s.city))
    t.require(isinstance(result, list) and all(isinstance(row, dict) for row in result), "a list of dicts",
              lambda: show(result, 200), "Do you return `[dict(row) for row in result.mappings()]`?")
    wanted = {row["venue"]: row for row in s.expected}
    t.require(sorted(map(str, (row.get("venue") for row in result))) == sorted(wanted),
              f"the {len(wanted)} venues in {s.city!r}: {', '.join(wanted)}", lambda: show([r.get("venue") for r in result], 200),
              "Did you keep the venues without events or bookings? A `JOIN` drops them; a `LEFT JOIN` keeps them. And do "
              "you filter on `v.city = :city`?")
    for seen, want in ((row, wanted[row["venue"]]) for row in result):
        t.require(seen == want and all(type(seen[k]) is int for k in ("events", "bookings", "seats_sold")),
                  f"the row of venue {want['venue']}: `{want}`", lambda: f"`{show(seen)}`", lambda: next(
                      h for key, h in TOTAL_HINTS if seen[key] != want[key] or key == "venue") if set(seen) == set(want)
                  else "Are the keys exactly `venue`, `events`, `bookings` and `seats_sold`?")
    t.require(result == s.expected, "ordered by `seats_sold`, most first, then by venue name",
              lambda: f"the order {show([(r['venue'], r['seats_sold']) for r in result], 200)}",
              "Did you add `ORDER BY seats_sold DESC, v.name`?")
    return s


@ex4.step("injection payloads as the city find nothing, raise nothing and change nothing")
def _report_injection(t, s):
    before = dbkit.query(t, COUNTS)
    for payload in (template.format(city=s.city) for template in PAYLOADS):
        call = dbkit.attempt(t, s.check.app, s.report, payload)
        t.require(call.returned, f"{call.text} returns `[]`, as for any unknown city",
                  lambda: call.seen() + ": the quote in the text ended a string in your SQL", BOUND)
        t.require(call.value == [], f"{call.text} returns `[]`, as for any unknown city",
                  lambda: f"it returned {show(call.value, 160)}: the text became part of your SQL", BOUND)
    after = dbkit.query(t, COUNTS)
    t.require(after == before, f"the tables unchanged: (venues, events, bookings) {before[0]}", f"{after[0]}",
              "Did a payload run as SQL? Bind the value: `:city`.")
    return s


@ex4.step("the city travels as a bound parameter, never inside the SQL text")
def _report_bound(t, s):
    city = t.word().title() + "Ville"
    with dbkit.recording(t, s.check.engine) as seen:
        _first(dbkit.attempt(t, s.check.app, s.report, city))
    inside = [sql for sql in seen.sql if city in sql]
    t.require(not inside and any(city in repr(params) for _, params in seen.statements),
              f"the value {city!r} among the statement's parameters, not in its text",
              lambda: f"it is in the SQL: `{dbkit.excerpt(inside[0], 160)}`" if inside else "it was not sent at all",
              "Did you format the city into the SQL, even escaped? Use `:city` and pass `{\"city\": city}`.")
    return s


@ex4.step("`reports.py` writes its SQL with `text()`")
def _report_text(t, s):
    called = {node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "") for node in
              ast.walk(ast.parse((t.project / REPORTS).read_text(encoding="utf-8"))) if isinstance(node, ast.Call)}
    t.require("text" in called, "a `text(\"SELECT ...\")` statement", "no call of `text()` in the file",
              "This exercise is about SQL written by hand: did you build the query with `select()` instead? That works "
              "too, but here, write the SQL with `text()`.")
    return s


@ex4.step("`GET /api/reports/sales?city=...` answers the report (the route is given)")
def _report_route(t, s):
    body = t.json(s.check.client.get("/api/reports/sales", query_string={"city": s.city}), 200, "the report",
                  "Did you keep the route `@bp.get(\"/sales\")` below your function?")
    t.require(isinstance(body, dict) and body.get("venues") == s.expected, f"`{{\"city\": {s.city!r}, \"venues\": [...]}}`",
              lambda: show(body, 200), "Does the route return `sales_by_venue(city)` under `venues`?")


# --- exercise 5: optimistic locking ------------------------------------------------------------------

ex5 = chapter.exercise(
    "Optimistic locking on events",
    hints=[
        "Two lines in `class Event`: a column `version: Mapped[int] = mapped_column(server_default=\"1\")`, and "
        "`__mapper_args__ = {\"version_id_col\": version}`, which tells SQLAlchemy to count it up on every `UPDATE` and "
        "to add `AND version = <the version read>` to the `UPDATE`'s `WHERE`.",
        "`__mapper_args__` names the column object itself, the `version` defined just above it in the class body, not "
        "the string `\"version\"`. So the column needs its `= mapped_column(...)`: a bare annotation, `version: "
        "Mapped[int]`, defines no name in the class body, and `__mapper_args__` then raises `NameError`.",
        "`version: Mapped[int] = mapped_column(server_default=\"1\")` and then `__mapper_args__ = {\"version_id_col\": "
        "version}`. The error handler (given in `errors.py`) turns `StaleDataError` into 409.",
    ],
)
ex5.defines("tickethub.models", classes=["Event"])
LOCKED = "Is `version_id_col` set in `__mapper_args__`? Without it, the second `UPDATE` overwrites the first."


@ex5.step("`Event.version` is a required whole-number column, and the mapper's `version_id_col`")
def _version_column(t, names):
    facts = dbkit.describe(t, dbkit.learner_db(t), {"Event": names.Event})["Event"]
    column = facts.get("columns", {}).get("version")
    t.require(column is not None, "a column `version` in `Event`", lambda: "`events` has the columns " + ", ".join(
        f"`{c}`" for c in facts.get("columns", {})), "Did you add `version: Mapped[int] = mapped_column(...)` to `class Event`?")
    t.require(column["python"] == "int" and not column["nullable"], "`version` is an `int` column, `NOT NULL`",
              f"a `{column['type']}` column, {'nullable' if column['nullable'] else 'NOT NULL'}",
              "Is it annotated `Mapped[int]` (not `Mapped[int | None]`)?")
    t.require(facts.get("version_given") is None, "`__mapper_args__ = {\"version_id_col\": version}` in `Event`: the "
              "column itself", lambda: f"`version_id_col` is `{facts['version_given']}`", VERSION_TEXT)
    t.require(facts["version"] == "version", "`__mapper_args__ = {\"version_id_col\": version}` in `Event`",
              "the mapper has no version column" if facts["version"] is None else f"the mapper counts `{facts['version']}`",
              "A column alone changes nothing: SQLAlchemy only checks it when the mapper names it. Did you add "
              "`__mapper_args__ = {\"version_id_col\": version}` inside `class Event`?")
    return State(Event=names.Event, check=dbkit.check_app(t, "events", "bookings"))


@ex5.step("a new event has version 1 (also one inserted without the ORM), and a committed change makes it 2")
def _versions_count(t, s):
    row = {"name": t.word("Gala ").title(), "capacity": 50, "seats_left": 50}
    inserted = dbkit.write(t, dbkit.insert_op(EVENTS, row), refusable=True)
    seen = inserted if isinstance(inserted, Refusal) else dbkit.one(t, EVENTS, inserted[0][0])["version"]
    t.require(seen == 1 and type(seen) is int, "an event inserted without the ORM (by a migration, say) has version 1",
              lambda: f"the database refused it: {seen.seen(75)}" if isinstance(seen, Refusal) else f"its version is {show(seen)}",
              "Did you give the column `server_default=\"1\"`, as migration 0003 has it? Then the database itself starts "
              "every row at 1.")
    with dbkit.app_context(t, s.check.app):
        event = s.Event(**{**row, "name": t.word("Gala ").title()})
        error = dbkit.save(t, s.check, event)
        s.event_id = t.get(event, "id")
    t.require(error is None, "a new `Event` saved with `commit()`", lambda: error.seen(), "Does `Event` still save?")
    versions = [dbkit.one(t, EVENTS, s.event_id)["version"]]
    versions += [dbkit.race(t, s.check.engine, s.Event, s.event_id, {"name": t.word().title()})[0]
                 or dbkit.one(t, EVENTS, s.event_id)["version"]]
    t.require(versions == [1, 2], "version 1 for the new event, 2 once it was changed", f"versions {show(versions)}",
              "Did you set `version_id_col` (SQLAlchemy then counts by itself), and no `version_id_generator=False`?")
    return s


@ex5.step("of two sessions that read the same event, the second to commit gets `StaleDataError`")
def _two_sessions(t, s):
    first, second = t.word("First ").title(), t.word("Second ").title()
    errors = dbkit.race(t, s.check.engine, s.Event, s.event_id, {"name": first}, {"name": second})
    name = dbkit.one(t, EVENTS, s.event_id)["name"]
    t.require(errors[0] is None and errors[1] is not None and errors[1].isa("StaleDataError") and name == first,
              f"the second commit raises `StaleDataError`, and the first one's name {first!r} stays",
              f"{'; '.join('no error' if e is None else f'`{e.type_name}`' for e in errors)}; the name is {name!r}", LOCKED)
    return s


def _meanwhile(t, s, method: str, url: str, json: dict, *ops):
    """Send the request, the other request's `ops` committed just before its `UPDATE` of `events`: the reply."""
    with dbkit.interleave(t, s.check.engine, *ops, before=r"^\s*UPDATE events\b") as other:
        reply = dbkit.send(t, s.check.client, method, url, "StaleDataError", "409 Conflict", "Did you run the cell that "
                           "writes `tickethub/errors.py`? Its handler turns `StaleDataError` into 409.", json=json)
    t.require(other.done and other.refusal is None, f"`{method.upper()} {url}` sends an `UPDATE` of `events`",
              lambda: other.refusal.seen() if other.refusal else "it sent none",
              "Does it still change the event (chapter 03's services)?")
    return reply


@ex5.step("`PATCH /api/events/<id>` answers 409 when another request changed the event first, and keeps its change")
def _stale_patch(t, s):
    theirs = t.word("Theirs ").title()
    reply = _meanwhile(t, s, "patch", f"/api/events/{s.event_id}", {"name": t.word("Ours ").title()},
                       dbkit.update_op(EVENTS, {"id": s.event_id}, {"name": theirs}, add={"version": 1}))
    t.json(reply, 409, "a JSON error: someone else changed the event first",
           "Is `version_id_col` set? Without it, your `UPDATE` quietly overwrites the other request's change.")
    name = dbkit.one(t, EVENTS, s.event_id)["name"]
    t.require(name == theirs, f"the other request's name {theirs!r} kept", f"the name is {name!r}", LOCKED)
    return s


# --- exercise 6: booking seats in one statement ------------------------------------------------------

ex6 = chapter.exercise(
    "Seats taken in one conditional `UPDATE`",
    hints=[
        "Let the database check and subtract in one statement: `db.update(Event).where(Event.id == event_id, "
        "Event.seats_left >= seats).values(seats_left=Event.seats_left - seats, version=Event.version + 1)`, run with "
        "`db.session.execute(...)`. Nothing is read first, so nothing read can be out of date.",
        "The result's `rowcount` says how many rows the `UPDATE` changed: 0 means no event with that id had enough seats. "
        "Then find out which: `db.session.get(Event, event_id)` is `None` (`raise EventNotFound(event_id)`), or "
        "`raise SoldOut(event.seats_left)`. `>=`, not `>`: booking exactly the last seats must work.",
        "`taken = db.session.execute(db.update(Event).where(Event.id == event_id, Event.seats_left >= seats)"
        ".values(seats_left=Event.seats_left - seats, version=Event.version + 1))`, then `if taken.rowcount == 0:` "
        "look the event up and raise `EventNotFound` or `SoldOut`; else `booking = Booking(event_id=event_id, "
        "email=email, seats=seats)`. The given lines add it and commit.",
    ],
)
ex6.defines("tickethub.bookings.services", functions=["book"], classes=["SoldOut", "AlreadyBooked"])
ATOMIC = "Do you read the event, then write the seat count you computed in Python? Another booking in between is " \
    "then lost (or, with a version, answered 409 although seats are left). Subtract in the database: " \
    "`.values(seats_left=Event.seats_left - seats)`, with `Event.seats_left >= seats` in the `.where(...)`."
NEGATIVE = {"IntegrityError": lambda error: "The database refused a negative `seats_left` (the `CHECK` constraint "
            "`seats_left_not_negative`): your `UPDATE` subtracted more seats than were left. Is `Event.seats_left >= seats` "
            "in its `.where(...)`, so that it changes no row instead?" if "seats_left_not_negative" in error.message else None}
OVERDRAWN = {"IntegrityError": lambda error: "The database refused a negative `seats_left` (the `CHECK` constraint "
             "`seats_left_not_negative`) for a booking of exactly the seats left: does your `UPDATE` subtract just the "
             "seats booked, `seats_left=Event.seats_left - seats`?" if "seats_left_not_negative" in error.message else None}
ROWCOUNT = "Do you check `rowcount`? When the `UPDATE` changed no row, there were not enough seats: raise `SoldOut` " \
    "before adding the booking."


def _event(t, seats: int) -> int:
    return dbkit.insert(t, EVENTS, {"name": t.word("Last ").title(), "capacity": seats, "seats_left": seats})[0]


def _state(t, event_id: int) -> tuple:
    """(seats sold, `seats_left`, version) of an event, as the database has them."""
    event = dbkit.one(t, EVENTS, event_id)
    return sum(row["seats"] for row in dbkit.rows(t, BOOKINGS, event_id=event_id)), event["seats_left"], event["version"]


def _book(t, s, event_id: int, seats: int, *others):
    """POST a booking of `seats`, with `others`' ops (another request) committed just before its `UPDATE` of events."""
    json = {"email": f"{t.word()}@example.com", "seats": seats}
    if not others:
        return dbkit.send(t, s.check.client, "post", f"/api/events/{event_id}/bookings", "StaleDataError", "no "
                          "`StaleDataError`", ATOMIC, json=json)
    return _meanwhile(t, s, "post", f"/api/events/{event_id}/bookings", json, *others)


def _other(t, event_id: int, seats: int) -> tuple:
    """Another request's booking of `seats`, as one atomic write would make it."""
    return (dbkit.insert_op(BOOKINGS, {"event_id": event_id, "email": f"{t.word()}@example.com", "seats": seats}),
            dbkit.update_op(EVENTS, {"id": event_id}, add={"seats_left": -seats, "version": 1}))


LAST_SEATS = {  # what a refusal of the last seats says about its cause, by its status
    409: "Is the condition `Event.seats_left >= seats`? With `>`, the last seats can never be booked.",
    404: "This event exists: when the `UPDATE` changed no row, do you raise `EventNotFound` only if "
         "`db.session.get(Event, event_id)` is `None`?",
}


@ex6.step("booking exactly the seats left: 201, `seats_left` 0, and the event's `version` counted up", errors=OVERDRAWN)
def _book_last(t, names):
    s = State(check=dbkit.check_app(t, "events", "bookings"))
    seats = t.rng.randrange(1, 6)
    event_id = _event(t, seats)
    reply = _book(t, s, event_id, seats)
    t.json(reply, 201, f"the booking of the last {seats} seats", LAST_SEATS.get(
        reply.status_code, "Does `book()` take the seats and return the booking, which the route answers with 201?"))
    state = _state(t, event_id)
    t.require(state == (seats, 0, 2), f"{seats} seats sold, `seats_left` 0, version 2", lambda: f"{state[0]} sold, "
              f"`seats_left` {state[1]}, version {state[2]}", "Do you subtract the seats (`seats_left=Event.seats_left - "
              "seats`) and count the version up (`version=Event.version + 1`), so that an edit which read the event "
              "before this booking gets 409 instead of writing back an old `seats_left`?")
    return s


@ex6.step("more seats than are left, or an unknown event: 409 and 404, and nothing changes", errors=NEGATIVE)
def _book_refused(t, s):
    left = t.rng.randrange(1, 6)
    event_id = _event(t, left)
    reply = _book(t, s, event_id, left + t.rng.randrange(1, 3))
    state = _state(t, event_id)
    t.require(reply.status_code == 409 and state == (0, left, 1), f"409 for more than the {left} seats left, and the "
              f"event unchanged: 0 sold, `seats_left` {left}, version 1", f"{reply.status_code}; {state[0]} sold, "
              f"`seats_left` {state[1]}, version {state[2]}", ROWCOUNT)
    reply = _book(t, s, t.rng.randrange(10**6, 10**7), 1)
    t.json(reply, 404, "404 for an event that does not exist", "When no row changed and `db.session.get(Event, "
           "event_id)` is `None`, do you `raise EventNotFound(event_id)`?")
    return s


@ex6.step("a booking that another one overtakes still gets the seats left, and neither is lost (no 409, no retry)")
def _book_overtaken(t, s):
    capacity = t.rng.randrange(6, 12)
    theirs = t.rng.randrange(1, capacity // 2)
    ours = capacity - theirs - t.rng.randrange(0, 2)
    event_id = _event(t, capacity)
    reply = _book(t, s, event_id, ours, *_other(t, event_id, theirs))
    state = _state(t, event_id)
    t.require(reply.status_code == 201 and state == (theirs + ours, capacity - theirs - ours, 3),
              f"201 for {ours} seats booked while another request took {theirs} of {capacity}; {theirs + ours} sold, "
              f"`seats_left` {capacity - theirs - ours}", f"{reply.status_code}; {state[0]} sold, `seats_left` {state[1]}",
              ATOMIC)
    return s


@ex6.step("two bookings racing for the last seats never overbook: the late one gets 409, and the other's seats stay",
          errors=NEGATIVE)
def _book_race(t, s):
    capacity = t.rng.randrange(4, 9)
    theirs = t.rng.randrange(2, capacity - 1)
    ours = capacity - theirs + t.rng.randrange(1, theirs + 1)  # enough when read, too many once theirs is booked
    event_id = _event(t, capacity)
    reply = _book(t, s, event_id, ours, *_other(t, event_id, theirs))
    state = _state(t, event_id)
    t.require(reply.status_code == 409 and state == (theirs, capacity - theirs, 2),
              f"409 for {ours} seats booked while another request took {theirs} of {capacity}; {theirs} seats sold, "
              f"{capacity - theirs} left", f"{reply.status_code}; {state[0]} seats sold, `seats_left` {state[1]}",
              f"Is `Event.seats_left >= seats` in the `UPDATE`'s `WHERE`? {ROWCOUNT}")


# --- exercise 7: the index migration -----------------------------------------------------------------

ex7 = chapter.exercise(
    "A migration that adds the indexes",
    hints=[
        "A migration changes the schema with `op`: `op.create_index(name, table, [columns])` in `upgrade()`, and "
        "`op.drop_index(name, table_name=table)` in `downgrade()`, in the reverse order.",
        "The names must be those `models.py` gets from the naming convention: `ix_bookings_email` on `bookings`, column "
        "`email`, and `ix_events_venue_id` on `events`, column `venue_id`.",
        "`op.create_index(\"ix_bookings_email\", \"bookings\", [\"email\"])` and `op.create_index(\"ix_events_venue_id\", "
        "\"events\", [\"venue_id\"])`; then `op.drop_index(\"ix_events_venue_id\", table_name=\"events\")` and "
        "`op.drop_index(\"ix_bookings_email\", table_name=\"bookings\")`.",
    ],
)
ex7.defines("check_0004_indexes", path=MIGRATION, functions=["upgrade", "downgrade"])
INDEXES = {"ix_bookings_email": (BOOKINGS, ["email"]), "ix_events_venue_id": (EVENTS, ["venue_id"])}
LOOKUPS = {"ix_bookings_email": ("SELECT id, event_id, seats FROM bookings WHERE email = :value", "ada@example.com"),
           "ix_events_venue_id": ("SELECT id, name FROM events WHERE venue_id = :value", 1)}


def _migrate(t, s, function: str) -> dict:
    """Run `upgrade()` or `downgrade()`; the indexes of `bookings` and `events` after it."""
    refused = dbkit.migrate(t, s.migration, function)
    t.require(refused is None, f"`{function}()` runs on the schema as migration 0003 leaves it",
              lambda: f"it raised {refused.seen()}", "Do the tables and columns you name exist? (`bookings (email)`, "
              "`events (venue_id)`)")
    return dbkit.indexes(t, BOOKINGS, EVENTS)


@ex7.step("`migrations/versions/0004_indexes.py` is revision `0004_indexes`, after `0003_event_version`")
def _migration_file(t, names):
    ids = (t.get(names.module, "revision"), t.get(names.module, "down_revision"))
    t.require(ids == ("0004_indexes", "0003_event_version"), "`revision = \"0004_indexes\"` and "
              "`down_revision = \"0003_event_version\"`", show(ids), "Did you keep the given revision ids?")
    return State(migration=names.module)


@ex7.step("`upgrade()` creates `ix_bookings_email` on `bookings (email)` and `ix_events_venue_id` on `events (venue_id)`")
def _migration_upgrade(t, s):
    s.models = t.module("tickethub.models")
    dbkit.create_tables(t, dbkit.learner_db(t))  # the schema as migration 0003 leaves it: no indexes yet
    dbkit.write(t, *(dbkit.sql_op(f"DROP INDEX IF EXISTS {name}") for name in INDEXES))
    dbkit.events(t, [dbkit.venues(t, [t.word().title()])[0]["id"], None], [2, 0])
    found = _migrate(t, s, "upgrade")
    for name, (table, columns) in INDEXES.items():
        t.require(found.get(name) == (table, columns), f"the index `{name}` on `{table}` ({', '.join(columns)})",
                  f"the indexes of `bookings` and `events`: {show(sorted(found.items()), 200)}",
                  f"Did you write `op.create_index(\"{name}\", \"{table}\", [\"{columns[0]}\"])` in `upgrade()`? The name "
                  "must be the one `models.py` gets from the naming convention, or autogenerate will want to change it.")
    return s


@ex7.step("the query plans use them: `… FROM bookings WHERE email = ?` and `… FROM events WHERE venue_id = ?`")
def _migration_plans(t, s):
    for name, (sql, value) in LOOKUPS.items():
        plan = dbkit.plan(t, sql, {"value": value})
        t.require(dbkit.uses(plan, name), f"the plan of `{sql.replace(':value', '?')}` uses `{name}`",
                  f"the plan: `{' / '.join(line.strip() for line in plan)[:200]}`", f"Does `{name}` index exactly the "
                  "column in the `WHERE`? A composite index whose first column is another one cannot serve this lookup.")
    return s


@ex7.step("`models.py` declares the same two indexes, so autogenerate finds nothing to do")
def _migration_models(t, s):
    schema = dbkit.describe(t, dbkit.learner_db(t), {name: t.get(s.models, name) for name in ("Booking", "Event")})
    declared = {name: (facts.get("table"), columns) for facts in schema.values()
                for name, columns in facts.get("indexes", {}).items()}
    t.require(all(declared.get(name) == where for name, where in INDEXES.items()), "`index=True` on `Booking.email` and "
              "`Event.venue_id` in `models.py`", f"`models.py` declares {show(sorted(declared))}",
              "Did you run exercise 5's cell? The `models.py` it writes declares both indexes.")
    return s


@ex7.step("`downgrade()` drops both indexes (and the plans no longer use them); `upgrade()` works again after it")
def _migration_downgrade(t, s):
    left = [name for name in _migrate(t, s, "downgrade") if name in INDEXES]
    t.require(not left, "no `ix_bookings_email` or `ix_events_venue_id` after `downgrade()`",
              f"still there: {', '.join(f'`{n}`' for n in left)}",
              "Did you write `op.drop_index(\"...\", table_name=\"...\")` for each index in `downgrade()`?")
    for name, (sql, value) in LOOKUPS.items():
        t.require(not dbkit.uses(dbkit.plan(t, sql, {"value": value}), name), f"the plan no longer uses `{name}`",
                  "it still does", "Did `downgrade()` drop the index?")
    found = _migrate(t, s, "upgrade")
    t.require(set(INDEXES) <= set(found), "both indexes back after `upgrade()` again", show(sorted(found)),
              "Does `downgrade()` leave the schema as `upgrade()` found it?")
    return s


@ex7.step("`downgrade()` names each index's own table (`table_name=`), as Alembic's SQL for MySQL needs")
def _migration_tables(t, s):
    sql = dbkit.migration_sql(t, s.migration, "downgrade")
    for name, (table, _) in INDEXES.items():
        t.require(not isinstance(sql, Refusal) and f"DROP INDEX {name} ON {table}" in sql,
                  f"`DROP INDEX {name} ON {table}` in `flask db downgrade --sql` for MySQL",
                  lambda: sql.seen() if isinstance(sql, Refusal) else "; ".join(f"`{line}`" for line in sql) or "no SQL",
                  f"Did you write `op.drop_index(\"{name}\", table_name=\"{table}\")`? SQLite and PostgreSQL drop an index "
                  "by its name alone, but MySQL (and Alembic's batch mode) need the table it belongs to.")


setup, reset = chapter.setup, chapter.reset
