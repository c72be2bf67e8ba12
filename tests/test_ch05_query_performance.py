"""Do chapter 05's checks accept right answers and reject wrong ones?"""

import sys
import types

import pytest
import sqlalchemy as sa

from checkers.chapters import dbkit
from checkers.engine import sandbox, workspace
from checkers.engine.outcomes import Outcome, Result
from checkers.notebook.api import Chapter
from conftest import assert_outcome, assert_rejected

CHAPTER = "05-query-performance"
OVERVIEW = "tickethub/events/overview.py"
DETAIL = "tickethub/events/detail.py"
REPORTS = "tickethub/reports.py"
MODELS = "tickethub/models.py"
ERRORS = "tickethub/errors.py"
MIGRATION = "migrations/versions/0004_indexes.py"
BOOKINGS = "tickethub/bookings/services.py"

LAZY_OVERVIEW = '''    events = db.session.execute(db.select(Event).order_by(Event.id)).scalars()
    return [{"id": e.id, "name": e.name, "venue": e.venue.name if e.venue else None,
             "bookings": len(e.bookings)} for e in events]
'''
FSTRING_REPORT = '''    statement = text(f"""
        SELECT v.name AS venue, COUNT(DISTINCT e.id) AS events, COUNT(b.id) AS bookings,
               COALESCE(SUM(b.seats), 0) AS seats_sold
        FROM venues AS v
        LEFT JOIN events AS e ON e.venue_id = v.id
        LEFT JOIN bookings AS b ON b.event_id = e.id
        WHERE v.city = '{city}'
        GROUP BY v.id, v.name
        ORDER BY seats_sold DESC, v.name
    """)
    return [dict(row) for row in db.session.execute(statement).mappings()]
'''
MAPPER_ARGS = '\n    __mapper_args__ = {"version_id_col": version}\n'

# found on PostgreSQL, where each must fail as on SQLite: (exercise, path, old, new, expected fragment)
POSTGRES_WRONG_ANSWERS = [
    ("ex1", OVERVIEW, "    # the database counts", LAZY_OVERVIEW + "    # the database counts",
     "the same number of queries for many events as for a few"),
    ("ex3", DETAIL, "selectinload(Event.bookings),  #", "joinedload(Event.bookings),  #",
     "Did you use `joinedload(Event.bookings)`?"),
    # on PostgreSQL the payload's own statements may run: the check must still see it
    ("ex4", REPORTS, '    statement = text("""', FSTRING_REPORT + '    statement = text("""',
     "injection"),
    ("ex5", MODELS, MAPPER_ARGS, "\n", "A column alone changes nothing"),
    ("ex6", BOOKINGS, "Event.seats_left >= seats", "Event.seats_left > seats", "With `>`, the last seats can never be booked"),
    ("ex6", BOOKINGS, "    if taken.rowcount == 0:", "    if False:", "Do you check `rowcount`?"),
    ("ex7", MIGRATION, '"bookings", ["email"]', '"bookings", ["event_id"]', "the index `ix_bookings_email` on `bookings` (email)"),
    # PostgreSQL refuses a server default that is no number when it creates the table: a FAIL that says so
    ("ex5", MODELS, 'mapped_column(server_default="1")', 'mapped_column(server_default="one")',
     "SQLAlchemy creates the tables of your models"),
    ("ex7", MIGRATION, 'op.drop_index("ix_events_venue_id", table_name="events")', 'op.drop_index("ix_events_venue_id")',
     "`DROP INDEX ix_events_venue_id ON events`"),
]


@pytest.mark.backends("postgresql")  # the cases found there; every other test runs there too
@pytest.mark.parametrize(("exercise", "path", "old", "new", "expected"), POSTGRES_WRONG_ANSWERS)
def test_wrong_answers_found_on_postgres_fail(project, exercise, path, old, new, expected):
    assert_rejected(project(CHAPTER).edit(path, old, new).check(exercise), expected)


def _replace_function_body(project, path: str, function: str, body: str) -> str:
    """The file at `path` with the body of `function` (after its docstring, if any) replaced by `body`."""
    text = project.read(path)
    start = text.index("\n", text.index(f"def {function}(")) + 1
    if text[start:].lstrip().startswith('"""'):
        start = text.index('"""\n', text.index('"""', start) + 3) + 4
    end = text.find("\n\n\n", start)
    end = len(text) if end == -1 else end + 1
    return text[:start] + body + text[end:]


def test_starters_import_and_the_factory_works(learner_package):
    """Does the learner's project, before any exercise is solved, import and build an app with every route?"""
    app = learner_package(CHAPTER).create_app({"TESTING": True})
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/api/events/overview", "/api/events/<int:event_id>/detail", "/api/reports/sales"} <= rules


def test_the_migration_chain_matches_the_models(migrated):
    """Do migrations 0001 to 0004 build the schema the models describe, and go back down to nothing?"""
    from flask_migrate import downgrade

    engine = migrated(CHAPTER)
    inspector = sa.inspect(engine)
    assert {i["name"] for i in inspector.get_indexes("bookings")} >= {"ix_bookings_email"}
    assert "version" in {c["name"] for c in inspector.get_columns("events")}
    downgrade(directory="migrations", revision="base")
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}


# --- exercise 1: the overview ----------------------------------------------------------------------------

EAGER_OVERVIEW = '''    statement = (
        db.select(Event)
        .options(selectinload(Event.venue), selectinload(Event.bookings))
        .order_by(Event.id)
        .limit(per_page).offset((page - 1) * per_page)
    )
    events = db.session.execute(statement).scalars()
    return [{"id": e.id, "name": e.name, "venue": e.venue.name if e.venue else None, "bookings": len(e.bookings)}
            for e in events]
'''
PAGE = '        .limit(per_page).offset((page - 1) * per_page)\n'
GROUPED_OVERVIEW = '''    rows = db.session.execute(
        db.select(Event.id, Event.name, Venue.name, func.count(Booking.id))
        .outerjoin(Venue, Event.venue_id == Venue.id)
        .outerjoin(Booking, Booking.event_id == Event.id)
        .group_by(Event.id, Event.name, Venue.name)
        .order_by(Event.id)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return [{"id": id_, "name": name, "venue": venue, "bookings": count} for id_, name, venue, count in rows]
'''


@pytest.mark.parametrize("body", [EAGER_OVERVIEW, GROUPED_OVERVIEW], ids=["eager-loading", "group-by"])
def test_overview_alternatives_pass(project, body):
    """Are eager loading (two `selectinload`s) and a `GROUP BY` with outer joins accepted?"""
    p = project(CHAPTER)
    p.write(OVERVIEW, _replace_function_body(p, OVERVIEW, "events_overview", body))
    assert_outcome(p.check("ex1"), Outcome.PASS)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (LAZY_OVERVIEW, "Do you touch `event.venue` or `event.bookings` in a loop?"),
        (  # the bookings eager, the venue still lazy
            EAGER_OVERVIEW.replace("selectinload(Event.venue), ", ""),
            "the same number of queries for many events as for a few",
        ),
        (  # an inner join drops the events without a venue
            GROUPED_OVERVIEW.replace(".outerjoin(Venue,", ".join(Venue,"),
            "Does a `JOIN` drop events without a venue?",
        ),
        (  # count(*) counts the row an outer join keeps for an event without bookings
            GROUPED_OVERVIEW.replace("func.count(Booking.id)", "func.count()"),
            "count `Booking.id`",
        ),
        (  # the seats, not the bookings
            GROUPED_OVERVIEW.replace("func.count(Booking.id)", "func.coalesce(func.sum(Booking.seats), 0)"),
            "Is `bookings` the number of bookings",
        ),
        (GROUPED_OVERVIEW.replace(PAGE, ""), "Do you take one page"),  # every event on every page
        (GROUPED_OVERVIEW.replace("(page - 1) * per_page", "page * per_page"), "the offset is `(page - 1) * per_page`"),
        (GROUPED_OVERVIEW.replace(".limit(per_page)", ".limit(per_page - 1)"), "Do you take one page"),
        (GROUPED_OVERVIEW.replace("(page - 1) * per_page", "(per_page - 1) * page"), "Do you take one page"),
        (  # the right rows, but every page reads the whole table
            GROUPED_OVERVIEW.replace(PAGE, "").replace(
                "    return [", "    rows = rows[(page - 1) * per_page:page * per_page]\n    return ["),
            "a `LIMIT`",
        ),
    ],
    ids=["lazy-loop", "lazy-venue", "inner-join", "count-star", "seats", "no-page", "offset-page", "short-page",
         "swapped", "sliced"],
)
def test_wrong_overviews_fail(project, body, expected):
    p = project(CHAPTER)
    assert_rejected(p.write(OVERVIEW, _replace_function_body(p, OVERVIEW, "events_overview", body)).sweep("ex1"), expected)


def test_an_empty_overview_is_a_list(project):
    """Does an overview that gives `None` when there are no events fail, whatever the seed (no events is always tried)?"""
    p = project(CHAPTER).edit(OVERVIEW, "    return [dict(row) for row in db.session.execute(statement).mappings()]\n",
                              "    rows = [dict(row) for row in db.session.execute(statement).mappings()]\n"
                              "    return rows or None\n")
    assert_rejected(p.sweep("ex1"), "`events_overview(1, 20)` returns a list (of 0 dicts)")


def test_an_overview_grouped_by_venue_fails(project, backend):
    """Do events that share a venue (always sent) catch a `GROUP BY` of the venue, which merges them?

    SQLite runs the query and merges the events; PostgreSQL refuses it (`GroupingError`).
    """
    body = GROUPED_OVERVIEW.replace(".group_by(Event.id, Event.name, Venue.name)", ".group_by(Venue.id)")
    p = project(CHAPTER)
    assert_rejected(p.write(OVERVIEW, _replace_function_body(p, OVERVIEW, "events_overview", body)).sweep("ex1"),
                    "one dict per event" if backend == "sqlite" else "GroupingError")


def test_overview_without_its_route_fails(project):
    """Does a project whose events routes were not updated (chapter 04's) say which cell to run?"""
    p = project(CHAPTER)
    p.write("tickethub/events/routes.py", workspace.files(CHAPTER, "start")["tickethub/events/routes.py"])
    assert_rejected(p.check("ex1"), "Did you run the cells that write `tickethub/pagination.py` and "
                    "`tickethub/events/routes.py`?")


# --- exercise 2: a regression test for the overview --------------------------------------------------------

QUERY_TESTS = "tests/test_overview_queries.py"
COUNTED = '''    counts = []
    for events in (3, 27):  # a few events, then many more: at more venues, with more bookings
        add_events(app, events)
        queries.clear()  # count the request's queries, not the INSERTs that made its data
        response = client.get("/api/events/overview")
        assert response.status_code == 200
        counts.append(len(queries))
'''
COMPARED = '''    assert counts[0] == counts[1], f"{counts[0]} queries for a page of 3 events, {counts[1]} for a page of 20"
'''
LISTENER = '''    sent = []

    def record(connection, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)
'''
BOUNDED = '''    add_events(app, 30)
    queries.clear()
    assert client.get("/api/events/overview?per_page=30").status_code == 200
    assert len(queries) <= 5, queries  # a bound that holds for any number of events: an N+1 breaks it with 30
'''
PARAMETRIZED = '''

@pytest.mark.parametrize("events", [2, 12, 40])
def test_overview_queries_stay_those_of_a_small_page(app, client, queries, events):
    add_events(app, 2)
    queries.clear()
    client.get("/api/events/overview")
    small = len(queries)
    add_events(app, events)
    queries.clear()
    assert client.get("/api/events/overview?per_page=50").status_code == 200
    assert len(queries) <= small
'''


def _queries_test(project, body: str | None = None, fixture: str | None = None):
    """Chapter 05's project with the reference test module, its test's (or its fixture's) body replaced."""
    p = project(CHAPTER)
    if body is not None:
        p.write(QUERY_TESTS, _replace_function_body(p, QUERY_TESTS, "test_overview_queries_do_not_grow_with_events", body))
    if fixture is not None:
        p.write(QUERY_TESTS, _replace_function_body(p, QUERY_TESTS, "queries", fixture))
    return p


def test_the_reference_test_catches_every_bug_on_every_seed(project):
    """Does the reference test pass the check whatever the seed (the check draws nothing from it)?"""
    assert_outcome(_queries_test(project).sweep("ex2"), Outcome.PASS)


@pytest.mark.parametrize(("body", "fixture"), [
    (None, LISTENER),  # a listener of its own instead of count_queries()
    (BOUNDED, None),  # one page of many events under a bound, rather than two pages compared
    (COUNTED + COMPARED + PARAMETRIZED, None),  # and a parametrized test beside it
], ids=["own-listener", "bound", "parametrized"])
def test_query_test_alternatives_pass(project, body, fixture):
    assert_outcome(_queries_test(project, body, fixture).check("ex2"), Outcome.PASS)


@pytest.mark.parametrize(("body", "fixture", "expected"), [
    # the fixture records each statement the engine sends while the test runs: a list that never fills
    (None, "    yield []\n", "This overview sends two more queries for each event on the page."),
    # ... while the test runs: not only while the fixture sets up
    (None, "    with app.app_context(), count_queries(db.engine) as sent:\n        pass\n    yield sent\n",
     "This overview sends two more queries for each event on the page."),
    # the test requests GET /api/events/overview, route included: events_overview() alone misses the route's queries
    ("    from tickethub.events import overview\n\n" + COUNTED.replace('        response = client.get("/api/events/overview")\n        assert response.status_code == 200\n',
                     "        with app.app_context():\n            overview.events_overview(1, 20)\n")
     + COMPARED, None, "A test notices only if it requests `GET /api/events/overview` itself"),
    # once with a few events and once with many more: one event under a bound lets one query per row through
    ("    add_events(app, 1)\n    queries.clear()\n    client.get('/api/events/overview')\n    assert len(queries) <= 3\n",
     None, "and compares a page of a few events with a page of many: on a page of one event"),
    # ... many more events, at several venues: a page that grows within one venue hides a query per venue
    ("    add_events(app, 3)\n    counts = []\n    for size in (1, 3):\n        queries.clear()\n"
     "        client.get(f'/api/events/overview?per_page={size}')\n        counts.append(len(queries))\n"
     "    assert counts[0] == counts[1]\n", None, "Are the events of your test at several venues?"),
    # it fails when the number of queries grows: a test that asserts nothing catches nothing
    (COUNTED, None, "This overview sends two more queries for each event on the page."),
    # ... and not when a correct overview needs another number of queries
    (COUNTED + "    assert counts == [2, 2]\n", None, "Does your test assert an exact number of queries?"),
    # it counts the request only: with the INSERTs of add_events, the counts differ on correct code
    (COUNTED.replace("        queries.clear()  # count the request's queries, not the INSERTs that made its data\n", "")
     + COMPARED, None, "Does your count include the INSERTs of `add_events`"),
    # pages that have events on them: an empty page takes one query less with selectinload
    ("    counts = []\n    for events in (0, 30):\n        add_events(app, events)\n        queries.clear()\n"
     "        client.get('/api/events/overview')\n        counts.append(len(queries))\n    assert counts[0] == counts[1]\n",
     None, "both pages with events on them"),
    # a test that skips itself runs nothing
    ("    pytest.skip('the overview is fast enough')\n", None, "`test_overview_queries_do_not_grow_with_events` was skipped"),
], ids=["never-listens", "stops-listening", "no-route", "one-event", "one-venue", "no-assert", "exact-count",
        "counts-inserts", "empty-page", "skips"])
def test_wrong_query_tests_fail(project, body, fixture, expected):
    assert_rejected(_queries_test(project, body, fixture).check("ex2"), expected)


@pytest.mark.parametrize(("text", "outcome", "expected"), [
    ("def test_overview(:\n    pass\n", Outcome.ERROR, f"{QUERY_TESTS}, line 1"),
    ("from tickethub.events.overview import overview_queries\n\n\ndef test_overview():\n    pass\n", Outcome.FAIL,
     "cannot import name 'overview_queries'"),
    ("def overview_is_fast():\n    assert True\n", Outcome.FAIL, "it defines no test function"),
    ("def test_overview():\n    while True:\n        pass\n", Outcome.TIMEOUT, f"{QUERY_TESTS}, line 2, in test_overview"),
], ids=["syntax-error", "bad-import", "no-test", "endless-loop"])
def test_bad_query_test_modules_are_reported(project, text, outcome, expected):
    assert_outcome(project(CHAPTER).write(QUERY_TESTS, text).check("ex2"), outcome, expected)


# --- exercise 3: the detail page -------------------------------------------------------------------------

GET_WITH_OPTIONS = '''    event = db.session.get(
        Event, event_id, options=[joinedload(Event.venue), selectinload(Event.bookings), raiseload("*")]
    )
    if not event:
        raise EventNotFound(event_id)
    return event
'''


def test_detail_alternative_passes(project):
    """Is `db.session.get(Event, id, options=[...])` accepted?"""
    p = project(CHAPTER)
    p.write(DETAIL, _replace_function_body(p, DETAIL, "event_detail", GET_WITH_OPTIONS))
    assert_outcome(p.check("ex3"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("selectinload(Event.bookings),  #", "joinedload(Event.bookings),  #", "Did you use `joinedload(Event.bookings)`?"),
        (  # the same, with the .unique() it needs: it works, in one query that repeats the event per booking
            "selectinload(Event.bookings),  #", "joinedload(Event.bookings),  #",
            "Did you use `joinedload(Event.bookings)`?",
        ),
        ("joinedload(Event.venue),  #", "selectinload(Event.venue),  #", "a query of its own"),
        (  # with raiseload("*"), a venue nobody loads raises at once
            "            joinedload(Event.venue),  # many-to-one: one more column set in the same row\n", "",
            "Did you add `joinedload(Event.venue)` to the options?",
        ),
        ("selectinload(Event.bookings),  #", "subqueryload(Event.bookings),  #", "That is `subqueryload`"),
        ("joinedload(Event.venue),  #", "joinedload(Event.venue, innerjoin=True),  #", "innerjoin=True"),
        ('            raiseload("*"),  # anything else the page touches fails loudly instead of querying\n', "",
         'Did you add `raiseload(\\"*\\")` to the options?'),
        ("        raise EventNotFound(event_id)\n", "        return None\n", "raises `EventNotFound`"),
    ],
    ids=["joined-collection", "joined-collection-unique", "selectin-venue", "lazy-venue", "subqueryload", "inner-join", "no-raiseload", "none"],
)
def test_wrong_details_fail(project, request, old, new, expected):
    p = project(CHAPTER).edit(DETAIL, old, new)
    if request.node.callspec.id == "joined-collection-unique":
        p.edit(DETAIL, "db.session.execute(statement).scalar_one_or_none()", "db.session.execute(statement).unique().scalar_one_or_none()")
    if "subqueryload" in new:
        p.edit(DETAIL, "import joinedload,", "import joinedload, subqueryload,")
    assert_rejected(p.check("ex3"), expected.replace('\\"', '"'))


def test_detail_with_a_second_lookup_fails(project):
    """Does loading the event, then its venue with `db.session.get`, count as more than two queries?"""
    p = project(CHAPTER)
    body = GET_WITH_OPTIONS.replace("joinedload(Event.venue), ", "").replace(', raiseload("*")', "").replace(
        "    return event\n", "    if event.venue_id is not None:\n        db.session.get(Venue, event.venue_id)\n    return event\n")
    p.write(DETAIL, _replace_function_body(p, DETAIL, "event_detail", body).replace(
        "from ..models import Event", "from ..models import Event, Venue"))
    assert_rejected(p.check("ex3"), "a query of its own")


# --- exercise 4: the sales report ------------------------------------------------------------------------

CTE_REPORT = '''    statement = text("""
        WITH per_event AS (
            SELECT e.id, e.venue_id, COUNT(b.id) AS bookings, COALESCE(SUM(b.seats), 0) AS seats
            FROM events AS e LEFT JOIN bookings AS b ON b.event_id = e.id
            GROUP BY e.id, e.venue_id
        )
        SELECT v.name AS venue,
               COUNT(p.id) AS events,
               COALESCE(SUM(p.bookings), 0) AS bookings,
               COALESCE(SUM(p.seats), 0) AS seats_sold
        FROM venues AS v LEFT JOIN per_event AS p ON p.venue_id = v.id
        WHERE v.city = :city
        GROUP BY v.id, v.name
        ORDER BY 4 DESC, 1
    """).bindparams(city=city)
    return [{key: (int(value) if key != "venue" else value) for key, value in row.items()}
            for row in db.session.execute(statement).mappings()]
'''


def test_report_alternative_passes(project):
    """Are a `WITH` clause, `.bindparams()` and positional `ORDER BY` accepted?"""
    p = project(CHAPTER)
    p.write(REPORTS, _replace_function_body(p, REPORTS, "sales_by_venue", CTE_REPORT))
    assert_outcome(p.check("ex4"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("COUNT(DISTINCT e.id) AS events", "COUNT(e.id) AS events", "Did you write `COUNT(DISTINCT e.id)`?"),
        ("COALESCE(SUM(b.seats), 0) AS seats_sold", "SUM(b.seats) AS seats_sold", "`COALESCE(SUM(b.seats), 0)`"),
        ("COUNT(b.id) AS bookings", "COUNT(*) AS bookings", "count `b.id`"),
        ("LEFT JOIN events AS e", "JOIN events AS e", "Did you keep the venues without events or bookings?"),
        ("ORDER BY seats_sold DESC, v.name", "ORDER BY v.name", "Did you add `ORDER BY seats_sold DESC, v.name`?"),
        ("        WHERE v.city = :city\n", "", "Did you keep the venues without events or bookings?"),
        (  # escaping by hand: no injection gets through, but the value is still SQL text
            '    return [dict(row) for row in db.session.execute(statement, {"city": city}).mappings()]\n',
            '    statement = text(str(statement).replace(":city", "\'" + city.replace("\'", "\'\'") + "\'"))\n'
            '    return [dict(row) for row in db.session.execute(statement).mappings()]\n',
            "Did you format the city into the SQL, even escaped?",
        ),
    ],
    ids=["count-events", "no-coalesce", "count-star", "inner-join", "order", "no-city", "escaped"],
)
def test_wrong_reports_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(REPORTS, old, new).check("ex4"), expected)


def test_injectable_report_fails(project):
    """Does a report that formats the city into its SQL let the payloads through, and fail?"""
    p = project(CHAPTER)
    p.write(REPORTS, _replace_function_body(p, REPORTS, "sales_by_venue", FSTRING_REPORT))
    assert_rejected(p.check("ex4"), "injection")


def test_report_without_text_fails(project):
    """Does a report built with `select()` fail the step that asks for SQL in `text()`?"""
    p = project(CHAPTER)
    body = '''    from sqlalchemy import desc, distinct, func

    from .models import Booking, Event, Venue

    seats = func.coalesce(func.sum(Booking.seats), 0).label("seats_sold")
    statement = (
        db.select(Venue.name.label("venue"), func.count(distinct(Event.id)).label("events"),
                  func.count(Booking.id).label("bookings"), seats)
        .outerjoin(Event, Event.venue_id == Venue.id).outerjoin(Booking, Booking.event_id == Event.id)
        .where(Venue.city == city).group_by(Venue.id, Venue.name).order_by(desc("seats_sold"), Venue.name)
    )
    return [dict(row) for row in db.session.execute(statement).mappings()]
'''
    p.write(REPORTS, _replace_function_body(p, REPORTS, "sales_by_venue", body).replace(
        "from sqlalchemy import text\n", ""))
    assert_rejected(p.check("ex4"), "write the SQL with `text()`")


# --- exercise 5: optimistic locking ----------------------------------------------------------------------

VERSION = '    version: Mapped[int] = mapped_column(server_default="1")\n'


def test_locking_alternative_passes(project):
    """Is a column spelled `mapped_column(Integer, nullable=False, server_default=text("1"))` accepted?"""
    p = project(CHAPTER).edit(MODELS, VERSION, '    version: Mapped[int] = mapped_column(Integer, nullable=False, '
                              'server_default=text("1"))\n')
    p.edit(MODELS, "from sqlalchemy import CheckConstraint,", "from sqlalchemy import CheckConstraint, Integer, text,")
    assert_outcome(p.check("ex5"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (VERSION + MAPPER_ARGS, "", "a column `version` in `Event`"),
        (MAPPER_ARGS, "\n", "A column alone changes nothing"),
        (VERSION, VERSION.replace("Mapped[int]", "Mapped[int | None]"), "`NOT NULL`"),
        (MAPPER_ARGS, '\n    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}\n',
         "version 1 for the new event, 2 once it was changed"),
        (  # the ORM counts from 1, but rows inserted without it (a migration's, a script's) have no version
            VERSION, "    version: Mapped[int] = mapped_column()\n", 'Did you give the column `server_default="1"`',
        ),
        (VERSION, VERSION.replace('"1"', '"0"'), "an event inserted without the ORM (by a migration, say) has version 1"),
    ],
    ids=["no-column", "no-mapper-args", "nullable", "no-generator", "no-server-default", "server-default-0"],
)
def test_wrong_locking_fails(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(MODELS, old, new).check("ex5"), expected)


@pytest.mark.parametrize("exercise", ["ex5", "ex1", "ex6"])
def test_bare_annotation_is_an_error_with_the_line_and_its_cause(project, exercise):
    """Does `version: Mapped[int]` without `= mapped_column()` report the learner's NameError, line and cause, in every
    exercise that imports the models?"""
    p = project(CHAPTER).edit(MODELS, VERSION, "    version: Mapped[int]\n")
    assert_outcome(p.check(exercise), Outcome.ERROR, "NameError", "tickethub/models.py, line",
                   "Hint: `version: Mapped[int]` with no `= mapped_column(...)` is an annotation only")


def test_a_misspelt_name_elsewhere_keeps_the_usual_hint(project):
    """Is the targeted NameError hint kept for `version_id_col`, and a NameError elsewhere hinted at as usual?"""
    p = project(CHAPTER).edit(MODELS, "    __table_args__ = (CheckConstraint(", "    __table_args__ = (ChekConstraint(")
    result = p.check("ex5")
    assert_outcome(result, Outcome.ERROR, "NameError", "Is the name spelt as where it is defined")
    assert "annotation only" not in result.text()


def test_version_id_col_given_its_name_as_text_is_told_so(project):
    """Does `{"version_id_col": "version"}` (text, not the column) fail with why, not crash the check?"""
    p = project(CHAPTER).edit(MODELS, MAPPER_ARGS, MAPPER_ARGS.replace("version}", '"version"}'))
    assert_rejected(p.sweep("ex5"), "`version_id_col` takes the column itself")


def test_locking_without_the_error_handler_fails(project):
    """Does a project whose errors.py lacks the `StaleDataError` handler say which cell to run?"""
    p = project(CHAPTER)
    p.write(ERRORS, workspace.files(CHAPTER, "start")[ERRORS])
    assert_rejected(p.check("ex5"), "Did you run the cell that writes `tickethub/errors.py`?")


# --- exercise 6: seats taken in one conditional UPDATE -----------------------------------------------------

ATOMIC_UPDATE = """    taken = db.session.execute(
        db.update(Event)
        .where(Event.id == event_id, Event.seats_left >= seats)
        # counting the version up makes an edit that read the event before this booking get 409
        .values(seats_left=Event.seats_left - seats, version=Event.version + 1)
    )
"""
TEXT_UPDATE = """    taken = db.session.execute(text(
        "UPDATE events SET seats_left = seats_left - :n, version = version + 1 WHERE id = :id AND seats_left >= :n"
    ), {"id": event_id, "n": seats})
"""
# chapter 03's booking: read, compare and subtract in Python (with exercise 5's version: 409 although seats are left)
READ_MODIFY_WRITE = """    event = db.session.get(Event, event_id)
    if event is None:
        raise EventNotFound(event_id)
    if event.seats_left < seats:
        raise SoldOut(event.seats_left)
    event.seats_left -= seats
    event.version += 0
    booking = Booking(event=event, email=email, seats=seats)
"""
# the value computed in Python from an earlier read, written by an UPDATE that has the condition
STALE_VALUE = """    event = db.session.get(Event, event_id)
    if event is None:
        raise EventNotFound(event_id)
    taken = db.session.execute(
        db.update(Event).where(Event.id == event_id, Event.seats_left >= seats)
        .values(seats_left=event.seats_left - seats, version=Event.version + 1)
    )
"""
# the seats checked in Python first, then subtracted by an UPDATE without the condition
PRE_CHECKED = """    event = db.session.get(Event, event_id)
    if event is None:
        raise EventNotFound(event_id)
    if event.seats_left < seats:
        raise SoldOut(event.seats_left)
    taken = db.session.execute(
        db.update(Event).where(Event.id == event_id)
        .values(seats_left=Event.seats_left - seats, version=Event.version + 1)
    )
"""


def _region(p) -> str:
    """The lines of `book()` between the validation and `db.session.add(booking)`: the exercise's own."""
    text = p.read(BOOKINGS)
    start = text.index("\n", text.index("    email, seats = validate_booking(data, max_seats)")) + 1
    return text[start:text.index("    db.session.add(booking)\n")]


def _rewrite(p, old: str, new: str):
    return p.write(BOOKINGS, p.read(BOOKINGS).replace(old, new))


@pytest.mark.parametrize("update", [TEXT_UPDATE, ATOMIC_UPDATE.replace("db.update(Event)", "db.update(Event.__table__)")
                                    .replace("Event.", "Event.__table__.c.").replace("Event.__table__.c.__table__", "Event.__table__")],
                         ids=["text", "core-table"])
def test_booking_alternatives_pass(project, update):
    """Are the same conditional UPDATE in `text()`, or on the Core table, accepted?"""
    p = project(CHAPTER)
    _rewrite(p, ATOMIC_UPDATE, update)
    if "text(" in update:
        _rewrite(p, "from sqlalchemy.exc import IntegrityError\n", "from sqlalchemy import text\nfrom sqlalchemy.exc import IntegrityError\n")
    assert_outcome(p.sweep("ex6"), Outcome.PASS)


@pytest.mark.parametrize(("old", "new", "expected", "not_said"), [
    # one seat too many subtracted: the CHECK refuses the last seats, and the hint says so
    ("seats_left=Event.seats_left - seats,", "seats_left=Event.seats_left - seats - 1,",
     "for a booking of exactly the seats left", "Hint: The database refused a negative `seats_left` (the `CHECK` "
     "constraint `seats_left_not_negative`): your `UPDATE` subtracted more seats than were left"),
    # a booking with no email: an IntegrityError of another rule gets no hint about the seats
    ("    booking = Booking(event_id=event_id, email=email, seats=seats)\n",
     "    booking = Booking(event_id=event_id, email=None, seats=seats)\n", "a required (`NOT NULL`) column left empty",
     "seats_left_not_negative`)"),
], ids=["one-too-many", "not-null"])
def test_a_refused_booking_is_hinted_at_by_what_refused_it(project, old, new, expected, not_said):
    result = project(CHAPTER).edit(BOOKINGS, old, new).check("ex6")
    assert_rejected(result, expected)
    assert not_said not in result.text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # the booking that fits is answered 409 "retry" (optimistic locking on a counter)
        ("region", READ_MODIFY_WRITE, "a booking that another one overtakes still gets the seats left"),
        # another booking's seats are overwritten: a lost update
        ("region", READ_MODIFY_WRITE.replace("    event.version += 0\n", "").replace(
            "    event.seats_left -= seats\n", "    db.session.execute(db.update(Event).where(Event.id == event_id)"
            ".values(seats_left=event.seats_left - seats, version=Event.version + 1))\n"), "Subtract in the database"),
        (ATOMIC_UPDATE, STALE_VALUE, "Subtract in the database"),
        # no condition: the last seats are overbooked, and the database's CHECK constraint refuses it
        (ATOMIC_UPDATE, PRE_CHECKED, "`seats_left_not_negative`"),
        ("Event.seats_left >= seats", "Event.seats_left > seats", "With `>`, the last seats can never be booked"),
        ("    if taken.rowcount == 0:", "    if False:", "Do you check `rowcount`?"),
        ("    if taken.rowcount == 0:", "    if taken.rowcount == 0 and False:", "Do you check `rowcount`?"),
        (", version=Event.version + 1", "", "count the version up"),
        ("seats_left=Event.seats_left - seats", "seats_left=Event.seats_left - 1", "`seats_left` 0"),
        ("        if event is None:\n            raise EventNotFound(event_id)\n", "        if event is None:\n"
         "            raise SoldOut(0)\n", "404 for an event that does not exist"),
    ],
    ids=["optimistic", "lost-update", "stale-value", "no-condition", "greater", "no-rowcount", "rowcount-ignored",
         "no-version", "one-seat", "no-404"],
)
def test_wrong_bookings_fail(project, old, new, expected):
    p = project(CHAPTER)
    _rewrite(p, _region(p) if old == "region" else old, new)
    assert_rejected(p.sweep("ex6"), expected)


# --- exercise 7: the index migration --------------------------------------------------------------------

BATCH_MIGRATION_UPGRADE = '''    with op.batch_alter_table("bookings") as batch_op:
        batch_op.create_index(batch_op.f("ix_bookings_email"), ["email"], unique=False)
    with op.batch_alter_table("events") as batch_op:
        batch_op.create_index(batch_op.f("ix_events_venue_id"), ["venue_id"], unique=False)
'''


def test_migration_alternative_passes(project):
    """Is the autogenerate style (batch mode, `op.f`, `unique=False`) accepted?"""
    p = project(CHAPTER)
    p.write(MIGRATION, _replace_function_body(p, MIGRATION, "upgrade", BATCH_MIGRATION_UPGRADE))
    assert_outcome(p.check("ex7"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"bookings", ["email"]', '"bookings", ["event_id", "email"]', "the index `ix_bookings_email` on `bookings` (email)"),
        ('op.create_index("ix_bookings_email"', 'op.create_index("bookings_email_idx"', "the naming convention"),
        ('    op.create_index("ix_events_venue_id", "events", ["venue_id"])\n', "",
         "the index `ix_events_venue_id` on `events` (venue_id)"),
        ('    op.drop_index("ix_events_venue_id", table_name="events")\n'
         '    op.drop_index("ix_bookings_email", table_name="bookings")\n', "    pass\n",
         "for each index in `downgrade()`"),
        ('down_revision = "0003_event_version"', 'down_revision = "0002_venue_slug"', "Did you keep the given revision ids?"),
        (  # SQLite and PostgreSQL drop it by name alone; MySQL (`--sql`) and batch mode need the table
            'op.drop_index("ix_events_venue_id", table_name="events")', 'op.drop_index("ix_events_venue_id")',
            "`DROP INDEX ix_events_venue_id ON events`",
        ),
        ('table_name="bookings"', 'table_name="events"', 'op.drop_index("ix_bookings_email", table_name="bookings")'),
        (  # a column that is not there: the database refuses, and the check says so (a FAIL, not a fault of the check)
            '"bookings", ["email"]', '"bookings", ["mail"]', "`upgrade()` runs on the schema as migration 0003 leaves it",
        ),
    ],
    ids=["composite", "name", "one-missing", "no-downgrade", "revision", "no-table-name", "other-table", "no-column"],
)
def test_wrong_migrations_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(MIGRATION, old, new).check("ex7"), expected)


def test_migration_without_the_models_indexes_fails(project):
    """Does a migration whose indexes models.py does not declare (chapter 04's models) point at exercise 5's cell?"""
    p = project(CHAPTER)
    p.write(MODELS, workspace.files(CHAPTER, "start")[MODELS])
    assert_rejected(p.check("ex7"), "Did you run exercise 5's cell?")


def test_given_files_change_only_what_the_chapter_adds():
    """Do this chapter's versions of chapter 04's files keep every line of them, except the two it indexes?

    If chapter 04 changes one of these files, this chapter's cells must be brought in step.
    """
    start = workspace.checkpoint(CHAPTER)["start"]
    cells = {c["path"]: c["solution"] for c in workspace.checkpoint(CHAPTER)["cells"]}
    replaced = {
        MODELS: {'    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id"))',
                 "    email: Mapped[str] = mapped_column(String(254))"},
        "tickethub/__init__.py": {"    from . import bookings, errors, events, venues, warmup"},
        "tickethub/events/routes.py": {"from ..pagination import paginate"},  # the overview's page helpers join it
        "tickethub/pagination.py": {  # read by page_args() now, which the overview shares
            '    page = _whole_number("page", 1)',
            '    per_page = min(_whole_number("per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)'},
        BOOKINGS: {  # exercise 6: the seats taken by one conditional UPDATE instead of a read and a write
            '"""Business rules for bookings: seats are booked in one transaction, or not at all."""',
            "    The booking and the event's new seat count are saved in one transaction: both, or neither.",
            "    event = db.session.get(Event, event_id)", "    if event is None:", "    if event.seats_left < seats:",
            "    event.seats_left -= seats", "    booking = Booking(event=event, email=email, seats=seats)"},
    }
    for path in (MODELS, ERRORS, BOOKINGS, "tickethub/__init__.py", "tickethub/events/routes.py", "tickethub/pagination.py"):
        ours = cells[path].splitlines()
        gone = {line for line in start[path].splitlines() if line not in ours}
        assert gone == replaced.get(path, set()), f"{path}: {sorted(gone)}"


# --- dbkit: the helpers chapter 05 added -------------------------------------------------------------------

TOUR = Chapter("checkers.chapters.ch98_dbkit_performance_tour", "dbkit's chapter-05 helpers, each once")
TOUR.name = CHAPTER  # chapter 05's files, so that its ex1 counts as attempted
tour = TOUR.exercise("dbkit's performance helpers")


@tour.step("seeding, sessions that race, an extra relationship, migrations, indexes and plans answer as documented")
def _tour(t, state):
    models = t.module("tickethub.models")
    Event, Booking = t.get(models, "Event"), t.get(models, "Booking")
    dbkit.add_relationship(t, Event, "tour_bookings", Booking, "event_id")
    check = dbkit.check_app(t, "events")
    assert "version" in dbkit.columns(t, "events") and "email" in dbkit.columns(t, "bookings")
    venues = dbkit.venues(t, ["Leeds", "York"])
    assert [v["city"] for v in venues] == ["Leeds", "York"] and len({v["name"] for v in venues}) == 2, venues
    events = dbkit.events(t, [venues[0]["id"], None], [3, 0])
    assert [len(e["seats"]) for e in events] == [3, 0] and dbkit.count(t, "bookings", event_id=events[0]["id"]) == 3
    row = dbkit.one(t, "events", events[0]["id"])
    assert (row["seats_left"], row["version"]) == (events[0]["capacity"] - sum(events[0]["seats"]), 1), row
    with dbkit.app_context(t, check.app), dbkit.recording(t, check.engine) as seen:
        shot = dbkit.snapshot(t, check.session.get(Event, events[0]["id"]), {"tour_bookings": ["seats"]})
    assert sorted(b["seats"] for b in shot["tour_bookings"]) == sorted(events[0]["seats"]) and len(seen.sql) == 2, seen.sql
    first, second = dbkit.race(t, check.engine, Event, events[0]["id"], {"name": "A"}, {"name": "B"})
    assert first is None and second.isa("StaleDataError") and dbkit.one(t, "events", events[0]["id"])["name"] == "A"
    assert dbkit.race(t, check.engine, Event, events[0]["id"], {"name": "C"}) == [None]
    migration = t.load("tour_0004_indexes", "migrations/versions/0004_indexes.py")
    email = ("SELECT id FROM bookings WHERE email = :email", {"email": "ada@example.com"})
    assert dbkit.uses(dbkit.plan(t, *email), "ix_bookings_email"), "create_all made the models' indexes"
    assert dbkit.migrate(t, migration, "downgrade") is None
    assert not {"ix_bookings_email", "ix_events_venue_id"} & set(dbkit.indexes(t, "bookings", "events"))
    assert not dbkit.uses(dbkit.plan(t, *email), "ix_bookings_email")
    assert dbkit.migrate(t, migration, "upgrade") is None
    found = dbkit.indexes(t, "bookings", "events")
    assert (found["ix_bookings_email"], found["ix_events_venue_id"]) == (("bookings", ["email"]), ("events", ["venue_id"]))
    assert all(table in ("bookings", "events") for table, _ in found.values()), found
    again = dbkit.migrate(t, migration, "upgrade")
    assert isinstance(again, dbkit.Refusal) and "ix_bookings_email" in again.message, again
    assert dbkit.migration_sql(t, migration, "downgrade") == [
        "DROP INDEX ix_events_venue_id ON events", "DROP INDEX ix_bookings_email ON bookings"]
    assert dbkit.migration_sql(t, migration, "upgrade", "postgresql") == [
        "CREATE INDEX ix_bookings_email ON bookings (email)", "CREATE INDEX ix_events_venue_id ON events (venue_id)"]


def test_dbkit_performance_helpers_answer_as_documented(project, monkeypatch):
    """Does each helper chapter 05 added to dbkit work across the boundary, on the reference project?"""
    monkeypatch.setitem(sys.modules, TOUR.module, types.SimpleNamespace(chapter=TOUR))
    request = {"module": TOUR.module, "exercise": "ex1", "project": str(project(CHAPTER).root), "seed": 1}
    assert_outcome(Result.from_dict(sandbox.run_forked(request)), Outcome.PASS)


def test_dbkit_sql_for_feedback():
    """Do plans and SQL read the same on SQLite and PostgreSQL in feedback?"""
    assert dbkit.excerpt("SELECT a, b FROM events WHERE id = %(id_1)s::INTEGER") == "SELECT … FROM events WHERE id = ?"
    assert dbkit.excerpt("DELETE FROM t WHERE x = " + "1" * 200, 20) == "DELETE FROM t WHERE…"
    assert dbkit.uses(["SEARCH bookings USING INDEX ix_bookings_email (email=?)"], "ix_bookings_email")
    assert not dbkit.uses(["Index Scan using ix_bookings_email_2 on bookings"], "ix_bookings_email")
