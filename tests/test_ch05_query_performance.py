"""Do chapter 05's checks accept right answers and reject wrong ones?"""

import pytest
import sqlalchemy as sa

from checkers.engine import workspace
from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "05-query-performance"
OVERVIEW = "tickethub/events/overview.py"
DETAIL = "tickethub/events/detail.py"
REPORTS = "tickethub/reports.py"
MODELS = "tickethub/models.py"
ERRORS = "tickethub/errors.py"
MIGRATION = "migrations/versions/0004_indexes.py"

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

# tests/test_postgres.py runs these on PostgreSQL too: (exercise, path, old, new, expected fragment)
POSTGRES_WRONG_ANSWERS = [
    ("ex1", OVERVIEW, "    # the database counts", LAZY_OVERVIEW + "    # the database counts",
     "the same number of queries for many events as for a few"),
    ("ex2", DETAIL, "selectinload(Event.bookings),  #", "joinedload(Event.bookings),  #",
     "Did you use `joinedload(Event.bookings)`?"),
    # on PostgreSQL the payload's own statements may run: the check must still see it
    ("ex3", REPORTS, '    statement = text("""', FSTRING_REPORT + '    statement = text("""',
     "injection"),
    ("ex4", MODELS, MAPPER_ARGS, "\n", "A column alone changes nothing"),
    ("ex5", MIGRATION, '"bookings", ["email"]', '"bookings", ["event_id"]', "the index `ix_bookings_email` on `bookings` (email)"),
]


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


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # chapter 04's env.py tries the old get_engine() first
def test_the_migration_chain_matches_the_models(tmp_path, learner_package):
    """Do migrations 0001 to 0004 build the schema the models describe, and go back down to nothing?"""
    from flask_migrate import check, downgrade, upgrade

    tickethub = learner_package(CHAPTER, "solution")
    app = tickethub.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'chain.sqlite'}"})
    with app.app_context():
        upgrade(directory="migrations")
        check(directory="migrations")  # exits (SystemExit) if autogenerate would find anything to do
        engine = app.extensions["sqlalchemy"].engine
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
    )
    events = db.session.execute(statement).scalars()
    return [{"id": e.id, "name": e.name, "venue": e.venue.name if e.venue else None, "bookings": len(e.bookings)}
            for e in events]
'''
GROUPED_OVERVIEW = '''    rows = db.session.execute(
        db.select(Event.id, Event.name, Venue.name, func.count(Booking.id))
        .outerjoin(Venue, Event.venue_id == Venue.id)
        .outerjoin(Booking, Booking.event_id == Event.id)
        .group_by(Event.id, Event.name, Venue.name)
        .order_by(Event.id)
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
    ],
    ids=["lazy-loop", "lazy-venue", "inner-join", "count-star", "seats"],
)
def test_wrong_overviews_fail(project, body, expected):
    p = project(CHAPTER)
    assert_rejected(p.write(OVERVIEW, _replace_function_body(p, OVERVIEW, "events_overview", body)).check("ex1"), expected)


def test_overview_without_its_route_fails(project):
    """Does a project whose events routes were not updated (chapter 04's) say which cell to run?"""
    p = project(CHAPTER)
    p.write("tickethub/events/routes.py", workspace.files(CHAPTER, "start")["tickethub/events/routes.py"])
    assert_rejected(p.check("ex1"), "Did you run the cell that writes `tickethub/events/routes.py`?")


# --- exercise 2: the detail page -------------------------------------------------------------------------

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
    assert_outcome(p.check("ex2"), Outcome.PASS)


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
    assert_rejected(p.check("ex2"), expected.replace('\\"', '"'))


def test_detail_with_a_second_lookup_fails(project):
    """Does loading the event, then its venue with `db.session.get`, count as more than two queries?"""
    p = project(CHAPTER)
    body = GET_WITH_OPTIONS.replace("joinedload(Event.venue), ", "").replace(', raiseload("*")', "").replace(
        "    return event\n", "    if event.venue_id is not None:\n        db.session.get(Venue, event.venue_id)\n    return event\n")
    p.write(DETAIL, _replace_function_body(p, DETAIL, "event_detail", body).replace(
        "from ..models import Event", "from ..models import Event, Venue"))
    assert_rejected(p.check("ex2"), "a query of its own")


# --- exercise 3: the sales report ------------------------------------------------------------------------

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
    assert_outcome(p.check("ex3"), Outcome.PASS)


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
    assert_rejected(project(CHAPTER).edit(REPORTS, old, new).check("ex3"), expected)


def test_injectable_report_fails(project):
    """Does a report that formats the city into its SQL let the payloads through, and fail?"""
    p = project(CHAPTER)
    p.write(REPORTS, _replace_function_body(p, REPORTS, "sales_by_venue", FSTRING_REPORT))
    assert_rejected(p.check("ex3"), "injection")


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
    assert_rejected(p.check("ex3"), "write the SQL with `text()`")


# --- exercise 4: optimistic locking ----------------------------------------------------------------------

VERSION = '    version: Mapped[int] = mapped_column(server_default="1")\n'


def test_locking_alternative_passes(project):
    """Is a column spelled `mapped_column(Integer, nullable=False)`, without a server default, accepted?"""
    p = project(CHAPTER).edit(MODELS, VERSION, "    version: Mapped[int] = mapped_column(Integer, nullable=False)\n")
    p.edit(MODELS, "from sqlalchemy import CheckConstraint,", "from sqlalchemy import CheckConstraint, Integer,")
    assert_outcome(p.check("ex4"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (VERSION + MAPPER_ARGS, "", "a column `version` in `Event`"),
        (MAPPER_ARGS, "\n", "A column alone changes nothing"),
        (VERSION, VERSION.replace("Mapped[int]", "Mapped[int | None]"), "`NOT NULL`"),
        (MAPPER_ARGS, '\n    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}\n',
         "version 1 for the new event, 2 once it was changed"),
    ],
    ids=["no-column", "no-mapper-args", "nullable", "no-generator"],
)
def test_wrong_locking_fails(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(MODELS, old, new).check("ex4"), expected)


def test_bare_annotation_is_an_error_with_the_line(project):
    """Does `version: Mapped[int]` without `= mapped_column()` report the learner's NameError and line?"""
    p = project(CHAPTER).edit(MODELS, VERSION, "    version: Mapped[int]\n")
    result = p.check("ex4")
    assert_outcome(result, Outcome.ERROR, "NameError", "tickethub/models.py, line")


def test_locking_without_the_error_handler_fails(project):
    """Does a project whose errors.py lacks the `StaleDataError` handler say which cell to run?"""
    p = project(CHAPTER)
    p.write(ERRORS, workspace.files(CHAPTER, "start")[ERRORS])
    assert_rejected(p.check("ex4"), "Did you run the cell that writes `tickethub/errors.py`?")


# --- exercise 5: the index migration --------------------------------------------------------------------

BATCH_MIGRATION_UPGRADE = '''    with op.batch_alter_table("bookings") as batch_op:
        batch_op.create_index(batch_op.f("ix_bookings_email"), ["email"], unique=False)
    with op.batch_alter_table("events") as batch_op:
        batch_op.create_index(batch_op.f("ix_events_venue_id"), ["venue_id"], unique=False)
'''


def test_migration_alternative_passes(project):
    """Is the autogenerate style (batch mode, `op.f`, `unique=False`) accepted?"""
    p = project(CHAPTER)
    p.write(MIGRATION, _replace_function_body(p, MIGRATION, "upgrade", BATCH_MIGRATION_UPGRADE))
    assert_outcome(p.check("ex5"), Outcome.PASS)


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
    ],
    ids=["composite", "name", "one-missing", "no-downgrade", "revision"],
)
def test_wrong_migrations_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(MIGRATION, old, new).check("ex5"), expected)


def test_migration_without_the_models_indexes_fails(project):
    """Does a migration whose indexes models.py does not declare (chapter 04's models) point at exercise 4's cell?"""
    p = project(CHAPTER)
    p.write(MODELS, workspace.files(CHAPTER, "start")[MODELS])
    assert_rejected(p.check("ex5"), "Did you run exercise 4's cell?")


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
    }
    for path in (MODELS, ERRORS, "tickethub/__init__.py", "tickethub/events/routes.py"):
        ours = cells[path].splitlines()
        gone = {line for line in start[path].splitlines() if line not in ours}
        assert gone == replaced.get(path, set()), f"{path}: {sorted(gone)}"
