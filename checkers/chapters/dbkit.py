"""Database work for the data chapters' checks, on both sides of the judge/learner boundary.

The judge's side (the functions that take `t`) builds a Flask app on the check's own, empty
database with the learner's `db`, models and blueprints (`check_app`), pushes app contexts
for calls into the learner's code (`app_context`, `attempt`), and reads and writes that
database through a connection of its own, which sees only what was committed (`rows`,
`count`, `insert`, `update`, `query`). Every touch of SQLAlchemy happens in the learner's
process, in this module's `@probe`s, and comes back as plain data: rows as dicts or tuples,
counts, SQL text, and what the database refused, as a `Refusal`. The verdicts stay with the
steps.

Tables are named by their table name (`"events"`); values in rows are plain (dates and
decimals come back as text). Write operations are plain data too (`insert_op`, `update_op`),
so that `interleave` can commit them "from another request" at a moment the step chooses.
"""
from __future__ import annotations

import contextlib
import datetime
import decimal
import importlib
import itertools
import logging
import os
import re
from dataclasses import dataclass

import flask_sqlalchemy  # noqa: F401  (imported before the check server forks: checks start warm)
import sqlalchemy as sa
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401
from flask import Blueprint, Flask, request
from flask.logging import default_handler
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship  # module level: `warm_up`'s models

from ..engine.databases import speed_up
from ..engine.judge import LearnerError, show
from ..engine.learner import probe, safe_repr

# where create_app() mounts each feature's blueprint
PREFIXES = {"events": "/api/events", "venues": "/api/venues", "bookings": "/api", "reports": "/api/reports"}
WRITES = r"^\s*(INSERT|UPDATE|DELETE)\b"  # `interleave`'s default moment: just before the app's first write
MODEL_HINT = "Do your models still define the tables as the exercise asks?"


# --- the judge's side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """What the database (or SQLAlchemy) raised, as data: the type, its classes' names, the message."""

    type_name: str
    classes: tuple  # qualified names of its type's classes (the MRO)
    message: str

    @classmethod
    def of(cls, data):
        return cls(data["type"], tuple(data["mro"]), data["message"]) if isinstance(data, dict) else None

    def isa(self, name: str) -> bool:
        return any(q.rsplit(".", 1)[-1] == name for q in self.classes)

    def seen(self, limit: int = 150) -> str:
        text = self.message if len(self.message) <= limit else self.message[: limit - 1] + "…"
        return f"`{self.type_name}: {text}`" if text else f"`{self.type_name}`"


@dataclass
class CheckApp:
    """A Flask app on the check's database, in the learner's process: handles, and the database's URL."""

    app: object  # Remote handles, all of them
    db: object
    session: object
    engine: object
    client: object
    models: dict
    url: str

    def model(self, name: str):
        return self.models.get(name)


def _answer(t, answer, expected: str, hint: str | None = MODEL_HINT, refusable: bool = False):
    """A probe's `{"ok": ...}` or `{"refused": ...}`: the value, a `Refusal`, or a failed step."""
    if "refused" not in answer:
        return answer["ok"]
    refusal = Refusal.of(answer["refused"])
    if refusable:
        return refusal
    t.fail(expected, f"it raised {refusal.seen()}", hint)


def learner_db(t):
    """The learner's `db` (`tickethub/db.py`, given), checked to be Flask-SQLAlchemy's, as a handle."""
    db = t.get(t.module("tickethub.db"), "db")
    t.require(t.isa(db, flask_sqlalchemy.SQLAlchemy), "`db = SQLAlchemy(model_class=Base)` in `tickethub/db.py`",
              lambda: f"`db` is {show(db)}", "Did you keep the file the chapter's first cells write, `tickethub/db.py`?")
    return db


def _given(t, module: str, name: str, line: str, kind=None):
    """A name the chapter's given code defines (a callable, or an instance of `kind`), as a handle."""
    value = t.get(t.module(module), name)
    t.require(t.isa(value, kind) if kind else getattr(value, "is_callable", False),
              f"`{name}` in `{module}` (given code)", lambda: f"`{name}` is {show(value)}",
              f"Did you keep the given line `{line}`?")
    return value


def check_app(t, *features: str, models: bool = True, config: dict | None = None) -> CheckApp:
    """An app on this check's own empty database, with the learner's `db`, models and these blueprints.

    Built the way `create_app()` builds one, minus what the check does not need (fewer routes
    make a faster check), and with settings of its own (`config` adds some), so that a mistake
    in another exercise's file (the config classes, say) does not show up here. With features,
    the learner's error handlers are registered too. With `models`, the models are imported
    and their tables created.
    """
    db = learner_db(t)
    init_db = _given(t, "tickethub.db", "init_db", "def init_db(app):")
    blueprints = [(_given(t, f"tickethub.{f}", "bp", f"bp = Blueprint(\"{f}\", __name__)", Blueprint), PREFIXES[f])
                  for f in features]
    handlers = _given(t, "tickethub.errors", "register_error_handlers", "def register_error_handlers(app):") \
        if features else None
    found = {}
    if models:
        module = t.module("tickethub.models")
        found = {name: t.get(module, name) for name in ("Venue", "Event", "Booking")}
    settings = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": t.database_url(), "MAX_TICKETS_PER_ORDER": 10,
                **(config or {})}
    app, engine = _answer(t, t.probe(_build, settings, init_db, db, blueprints, handlers, models),
                          "SQLAlchemy creates the tables of your models", "Can SQLAlchemy create the tables of your models? "
                          "Is every column's type and every constraint's SQL valid?")
    return CheckApp(app, db, t.get(db, "session"), engine, t.client(app), found, t.database_url())


def needs(t, *attributes: str, source: str = "the models", hint: str | None = None) -> None:
    """Fail early, and say so, when the learner's models lack what an exercise builds on ("Event.seats_left")."""
    models = t.module("tickethub.models")
    wanted = {a.split(".")[0]: t.get(models, a.split(".")[0]) for a in attributes}
    schema = describe(t, learner_db(t), wanted, hint=hint)
    for attribute in attributes:
        model, name = attribute.split(".")
        t.require(name in schema[model].get("attributes", ()),
                  f"`{attribute}` from {source} (this exercise builds on the models)",
                  f"`{model}` has no mapped attribute `{name}`", hint)


def engine_of(t, app, db):
    """The engine `db` made for `app` (which `db.init_app` has seen), as a handle."""
    return t.probe(_engine_of, app, db)


def pool_facts(t, engine, held: int) -> dict:
    """The engine's pool: its `class`, `pool_size`, `max_overflow`, `pool_pre_ping` and `pool_recycle`; for a
    `QueuePool` also `out` (connections lent while `held` are open), `after` (once they are closed) and `revived`
    (`ping` once a pooled connection died behind the pool's back, as when the database restarts), or `refused`
    (a `Refusal`: the database or driver would not connect)."""
    facts = t.probe(_pool_facts, engine, held)
    if "refused" in facts:
        facts["refused"] = Refusal.of(facts["refused"])
    if "revived" in facts:
        facts["revived"] = _answer(t, facts["revived"], "", refusable=True)
    return facts


def ping(t, engine, value: int = 1):
    """`SELECT value` on a new connection of the engine: the value, or a `Refusal` (the driver's, say)."""
    return _answer(t, t.probe(_ping, engine, value), "", refusable=True)


def url_facts(t, engine) -> dict:
    """Where an engine points: `driver`, `memory` (an in-memory SQLite database) and `where`, for feedback
    (a file named relative to the project, without the check's temporary folders)."""
    return t.probe(_url_facts, engine)


def watch_session(t, check: CheckApp, methods=("POST",)) -> None:
    """After each request of these methods, in the same request, try the session with a query (see `session_checks`)."""
    t.probe(_watch_session, check.app, check.db, list(methods))


def session_checks(t) -> list:
    """For each watched request so far: None if the session could still query, else the name of what it raised
    (a failed flush that was not rolled back makes the session refuse all work)."""
    return t.probe(_session_checks)


def watch_log(t, app) -> None:
    """From now on, keep what `app.logger` logs at ERROR or above (see `logged`), instead of printing it."""
    t.probe(_watch_log, app)


def logged(t) -> list[dict]:
    """What the watched app logged at ERROR or above: each record's level, and the names of its exception's
    classes (empty without an exception)."""
    return t.probe(_logged)


def add_required_column(t, db, table_name: str, column: str) -> None:
    """Create the table `table_name` of `db`'s models again, empty, with one more integer column `column`,
    NOT NULL, that the models do not know: every insert through the models then breaks a NOT NULL rule.

    Later writes of the check to that table must set `column`; the other tables stay as they are.
    """
    _answer(t, t.probe(_add_required_column, t.database_url(), db, table_name, column),
            f"the check adds a required column `{column}` to `{table_name}`")


def send(t, client, method: str, url: str, unhandled: str, expected: str, hint: str, **kwargs):
    """A test-client request; the learner's `unhandled` exception (a class name) reaching Flask fails the step."""
    try:
        return client.open(url, method.upper(), **kwargs)
    except LearnerError as error:
        if not error.isa(unhandled):
            raise
        t.fail(expected, f"it answered 500: the `{unhandled}` reached Flask unhandled", hint)


def app_from_config(t, config_class, **settings):
    """A bare Flask app (no database yet) configured `from_object(config_class)`, then `settings`."""
    return t.probe(_configured_app, config_class, settings)


@contextlib.contextmanager
def app_context(t, app, path: str | None = None):
    """Run the block's calls into the learner's code inside a new app context (a request's, with `path`)."""
    t.probe(_push, app, path)
    try:
        yield
    except Exception:  # a failed step or the learner's error: leave the context, and report that
        with contextlib.suppress(Exception):
            t.probe(_pop)
        raise
    t.probe(_pop)


def attempt(t, app, function, *args, path: str | None = None, **kwargs):
    """`t.attempt(function, ...)` in a fresh app context (a request's for `path`): a `Call`."""
    with app_context(t, app, path):
        return t.attempt(function, *args, **kwargs)


def commit(t, check: CheckApp) -> LearnerError | None:
    """`db.session.commit()` in the current app context: what the database refused (rolled back), or None.

    The learner's own errors (not SQLAlchemy's) escape, as the learner's ERROR.
    """
    call = t.attempt(check.session.commit)
    if call.error is not None:
        if not call.error.isa(sa.exc.SQLAlchemyError):
            raise call.error
        check.session.rollback()
    return call.error


def save(t, check: CheckApp, *objects) -> LearnerError | None:
    """`db.session.add_all(objects)`, then `commit(t, check)`."""
    check.session.add_all(list(objects))
    return commit(t, check)


def describe(t, db, models: dict, hint: str | None = None) -> dict:
    """What SQLAlchemy made of each model class (name -> handle), by the same names (see `_facts`)."""
    return _answer(t, t.probe(_describe, db, models), "SQLAlchemy sets up your models",
                   hint or "Does every `relationship()` name a model that exists, and every `back_populates` an "
                   "attribute of the other model?")


def rows(t, table: str, *, columns=None, order_by=None, **where) -> list[dict]:
    """The committed rows of `table` where each column equals the value given, in primary-key order."""
    return _answer(t, t.probe(_rows, t.database_url(), table, where, columns, order_by), f"the check reads the table `{table}`")


def one(t, table: str, id_) -> dict | None:
    found = rows(t, table, id=id_)
    return found[0] if found else None


def count(t, table: str, **where) -> int:
    return _answer(t, t.probe(_count, t.database_url(), table, where), f"the check counts the rows of `{table}`")


def insert_op(table: str, *rows: dict):
    return ["insert", table, [dict(row) for row in rows]]


def update_op(table: str, where: dict, set: dict | None = None, add: dict | None = None):  # noqa: A002
    """UPDATE `table` SET each of `set`, and each column of `add` to itself plus the number, WHERE `where`."""
    return ["update", table, dict(where), dict(set or {}), dict(add or {})]


def sql_op(sql: str, params: dict | None = None):
    return ["sql", sql, dict(params or {})]


def write(t, *ops, refusable: bool = False):
    """Run the ops in one transaction on the check's own connection, and commit.

    Each op gives: an insert, its new primary keys (in order); an update, its row count; SQL,
    its rows (or row count). A refusal rolls everything back, and fails the step unless `refusable`.
    """
    return _answer(t, t.probe(_write, t.database_url(), list(ops)), "the check writes its own rows", refusable=refusable)


def insert(t, table: str, *rows: dict) -> list:
    """Insert rows (committed); their primary keys, in order."""
    return write(t, insert_op(table, *rows))[0]


def update(t, table: str, where: dict, set: dict | None = None, add: dict | None = None,  # noqa: A002
           refusable: bool = False):
    """Update rows (committed); the row count, or with `refusable` a `Refusal` when the database refuses."""
    done = write(t, update_op(table, where, set, add), refusable=refusable)
    return done if isinstance(done, Refusal) else done[0]


def query(t, sql: str, params: dict | None = None, fresh: bool = False) -> list[tuple]:
    """Rows of a text query on the check's own connection (`fresh`: a brand-new connection)."""
    return _answer(t, t.probe(_query, t.database_url(), sql, params or {}, fresh), "the check runs a query")


def create_table(t, name: str, columns: dict, rows=()) -> None:
    """A table of the check's own (columns: name -> "id", "int", "str" or "bool"), with `rows`."""
    _answer(t, t.probe(_create_table, t.database_url(), name, columns, list(rows)), f"the check creates its table `{name}`")


def create_tables(t, db) -> None:
    """The tables of the learner's models (`db.metadata`), created through the check's own connection."""
    _answer(t, t.probe(_create_tables, t.database_url(), db), "the check creates the tables of your models")


def statement(t, table: str, *columns: str, order_by: str | None = None):
    """`select(columns of table).order_by(...)` built in the learner's process, as a handle."""
    return t.probe(_statement, t.database_url(), table, list(columns), order_by)


def execute(t, db, statement, refusable: bool = False) -> list[tuple]:
    """Run a statement in the current app context's session; its rows, mapped objects as their primary keys."""
    return _answer(t, t.probe(_execute, db, statement), "the statement runs", refusable=refusable)


def sql_of(t, statement, engine) -> str:
    """The SQL a statement compiles to on the engine's database, on one line ("" if it is no statement)."""
    return t.probe(_sql_of, statement, engine)


def snapshot(t, obj, spec, refusable: bool = False):
    """Plain values of an object's attributes in the current app context: `spec` lists the names, or maps a
    relationship's name to the spec of its objects. A missing attribute, or one SQLAlchemy refuses to load,
    is a `Refusal` whose message starts with the attribute's path (e.g. `event.bookings`)."""
    return _answer(t, t.probe(_snapshot, obj, spec), "the check reads the objects your code returned",
                   "Does your function return the model objects themselves?", refusable)


class Watch:
    """What a `recording` or `interleave` block saw, filled in when the block ends."""

    statements: list  # (sql, parameters) in the order sent
    done: bool  # `interleave`: did the moment come (and the ops run)?
    refusal: Refusal | None  # `interleave`: the ops' own failure
    results: list | None

    def __init__(self):
        self.statements, self.done, self.refusal, self.results = [], False, None, None

    @property
    def sql(self) -> list[str]:
        return [sql for sql, _ in self.statements]


@contextlib.contextmanager
def _watching(t, token):
    watch = Watch()
    try:
        yield watch
    except Exception:
        with contextlib.suppress(Exception):
            t.probe(_unlisten, token)
        raise
    seen = t.probe(_unlisten, token)
    watch.statements = [tuple(s) for s in seen["statements"]]
    watch.done, watch.refusal, watch.results = seen["done"], Refusal.of(seen["refused"]), seen["results"]


def recording(t, engine):
    """Record the statements `engine` sends in the block: `with recording(t, engine) as seen: ...; seen.sql`."""
    return _watching(t, t.probe(_listen, engine, None, None, None))


def interleave(t, engine, *ops, before: str = WRITES):
    """Commit `ops` on the check's own connection just before `engine` first sends SQL matching `before`.

    That is "another request" landing between the app's reads and its writes. The statements are
    recorded too; `watch.done` says whether the moment came.
    """
    return _watching(t, t.probe(_listen, engine, t.database_url(), before, list(ops)))


# --- columns, indexes, plans and migrations (chapter 05) ---------------------------------------------


def columns(t, table_name: str) -> list[str]:
    """The names of a table's columns (the learner's table, the check's own, or as the database describes it)."""
    return _answer(t, t.probe(_columns, t.database_url(), table_name), f"the check reads the table `{table_name}`")


def race(t, engine, model, key, *changes: dict) -> list:
    """Sessions of their own on `engine`, one per change, all read the row `key` of `model` first (two requests
    at once); then each in turn sets its change's attributes and commits. For each: None, or what its commit
    raised (a `Refusal`, `StaleDataError` say; rolled back). The learner's own errors escape."""
    return [Refusal.of(answer) for answer in
            _answer(t, t.probe(_race, engine, model, key, [dict(c) for c in changes]),
                    f"sessions of the check's own read row {key} of `{getattr(model, '_label', model)}` and change it")]


def migrate(t, module, function: str = "upgrade") -> Refusal | None:
    """Run a migration's `upgrade()` or `downgrade()` (`module`: a handle from `t.load`) on the check's database,
    Alembic's `op` bound to one transaction of the check's own connection: None, or what the database refused."""
    return Refusal.of(t.probe(_migrate, t.database_url(), module, function))


def migration_sql(t, module, function: str = "upgrade", dialect: str = "mysql"):
    """The statements a migration's function sends to a `dialect` database, as Alembic's offline mode
    (`flask db upgrade --sql`) writes them, each on one line; or a `Refusal` when it cannot write them."""
    return _answer(t, t.probe(_migration_sql, module, function, dialect), "", refusable=True)


def indexes(t, *tables: str) -> dict:
    """The indexes of these tables, as the database's own catalogue lists them, on a new connection:
    {name: (table, [columns])}. (Asked directly: SQLAlchemy's inspector is slow to start on PostgreSQL.)"""
    found = {}
    for name, table_name, column in query(t, INDEXES[t.database_url().startswith("sqlite")], fresh=True):
        if table_name in tables:
            found.setdefault(name, (table_name, []))[1].append(column)
    return found


def plan(t, sql: str, params: dict | None = None) -> list[str]:
    """How the database would run `sql`, a line per step: SQLite's `EXPLAIN QUERY PLAN`, or PostgreSQL's `EXPLAIN`
    with sequential scans priced out for that one transaction (`enable_seqscan = off`: on a check's tiny tables,
    PostgreSQL rightly prefers to read the table whole). Asked on a new connection: an SQLite connection that
    explained a statement before may repeat its old plan after an index was added or dropped."""
    return _answer(t, t.probe(_plan, t.database_url(), sql, params or {}), "the database explains a query")


def uses(plan_lines: list[str], name: str) -> bool:
    """Does a plan (from `plan`) name `name`, an index, as a word?"""
    return any(re.search(rf"\b{re.escape(name)}\b", line) for line in plan_lines)


def add_relationship(t, model, name: str, target, foreign_key: str) -> None:
    """Give the learner's `model` a lazy, read-only relationship of the check's own, `name`, to the `target` rows whose
    `foreign_key` column holds its primary key: one that no query of the learner's loads, to see what touching it does
    (a query, or `raiseload`'s refusal). Add it before the first query, so that loader options such as `raiseload("*")`
    see it like any other relationship."""
    t.probe(_add_relationship, model, name, target, foreign_key)


INDEXES = {  # (index, table, column) rows, in each index's column order; keyed by "is it SQLite?"
    True: "SELECT m.name, m.tbl_name, c.name FROM sqlite_master AS m, pragma_index_info(m.name) AS c "
          "WHERE m.type = 'index' ORDER BY m.name, c.seqno",
    False: "SELECT i.relname, t.relname, a.attname FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid "
           "JOIN pg_class AS t ON t.oid = x.indrelid JOIN pg_namespace AS n ON n.oid = t.relnamespace "
           "JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, position) ON true "
           "JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = k.attnum "
           "WHERE n.nspname = current_schema() ORDER BY i.relname, k.position",
}


# --- TicketHub's data, for the checks of the data chapters --------------------------------------------


def venues(t, cities: list[str]) -> list[dict]:
    """A venue per city, each with a new one-word name, committed through the check's own connection; with their ids."""
    names: set[str] = set()
    while len(names) < len(cities):
        names.add(t.word().title())
    rows = [{"name": name, "city": city, "capacity": t.rng.randrange(100, 5000)}
            for name, city in zip(t.rng.sample(sorted(names), len(cities)), cities)]
    return [{**row, "id": id_} for row, id_ in zip(rows, insert(t, "venues", *rows))]


def events(t, venue_ids: list, bookings: list[int]) -> list[dict]:
    """An event per venue id (None: no venue) with `bookings[i]` bookings of 1 to 4 seats, committed through the check's
    own connection (`version` 1, if the table counts versions); the rows with their `id` and their bookings' `seats`."""
    seats = [[t.rng.randrange(1, 5) for _ in range(n)] for n in bookings]
    version = {"version": 1} if "version" in columns(t, "events") else {}
    rows = [{"name": t.word("Gig ").title(), "capacity": (c := t.rng.randrange(40, 200)), "seats_left": c - sum(taken),
             "venue_id": venue, **version} for venue, taken in zip(venue_ids, seats)]
    ids = insert(t, "events", *rows)
    booked = [{"event_id": id_, "email": f"{t.word()}{n}@example.com", "seats": s}
              for id_, taken in zip(ids, seats) for n, s in enumerate(taken)]
    if booked:
        insert(t, "bookings", *booked)
    return [{**row, "id": id_, "seats": taken} for row, id_, taken in zip(rows, ids, seats)]


def excerpt(sql: str, limit: int = 110) -> str:
    """SQL for feedback: each placeholder `?` (PostgreSQL's `%(name)s::TYPE` too), the selected columns `…`, cut short."""
    sql = re.sub(r"^SELECT .+? FROM ", "SELECT … FROM ", re.sub(r"%\(\w+\)s(::[A-Z]+(\(\d+\))?)?", "?", sql))
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"


# --- the learner's side: probes --------------------------------------------------------------------
# Per-check state lives in these globals: each check's learner process is new.

_engines: dict = {}  # (url, fresh) -> the check's own engine: it sees only what was committed
_tables: dict = {}  # name -> Table: the learner's models' tables and the check's own
_contexts: list = []  # the app and request contexts `app_context` pushed, innermost last
_sessions: list = []  # `watch_session`: after each watched request, None or what the session raised
_listeners: dict = {}  # token -> (engine, hook, state)
_records: list = []  # `watch_log`: what the watched app logged at ERROR or above
_tokens = itertools.count(1)


def refused(error: BaseException) -> dict:
    """An exception as data (`Refusal.of` reads it)."""
    try:
        message = " ".join(str(error).split())
    except Exception:  # noqa: BLE001 — a broken __str__
        message = ""
    return {"type": type(error).__name__, "mro": [f"{k.__module__}.{k.__qualname__}" for k in type(error).__mro__],
            "message": message[:400]}


def plain(value):
    """A value the wire carries by value: dates and decimals as text, other objects as their (safe) repr."""
    if value is None or type(value) in (bool, int, float, str, bytes):
        return value
    if isinstance(value, str):  # SQLAlchemy's quoted_name, say
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value] if isinstance(value, list) else tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return safe_repr(value)


def connection(url: str, fresh: bool = False):
    """The check's own engine on `url` (`fresh`: no pool, so each connection is new), for probes."""
    key = (url, fresh)
    if key not in _engines:
        _engines[key] = sa.create_engine(url, poolclass=sa.pool.NullPool) if fresh else sa.create_engine(url)
        speed_up(_engines[key])
    return _engines[key]


def table(url: str, name: str) -> sa.Table:
    """A table by name: the learner's or the check's own, else as the database describes it."""
    if name not in _tables:
        _tables[name] = sa.Table(name, sa.MetaData(), autoload_with=connection(url))
    return _tables[name]


def _where(tab: sa.Table, where: dict):
    return [tab.c[name] == value for name, value in where.items()]


@probe
def _build(settings, init_db, db, blueprints, handlers, models):
    app = Flask("tickethub")
    app.config.update(settings)
    init_db(app)
    for bp, prefix in blueprints:
        app.register_blueprint(bp, url_prefix=prefix)
    if handlers is not None:
        handlers(app)
    with app.app_context():
        try:
            engine = db.engine  # a RuntimeError if `init_db` did not `db.init_app(app)`
            speed_up(engine)
            if models:
                db.create_all()
        except (sa.exc.SQLAlchemyError, RuntimeError) as error:
            return {"refused": refused(error)}
    _tables.update(db.metadata.tables)
    return {"ok": (app, engine)}


@probe
def _configured_app(config_class, settings):
    app = Flask("tickethub")
    app.config.from_object(config_class)
    app.config.update(settings)
    return app


@probe
def _engine_of(app, db):
    with app.app_context():
        engine = db.engine
    speed_up(engine)
    return engine


def _ping_now(engine, value) -> dict:
    try:
        with engine.connect() as conn:
            return {"ok": conn.execute(sa.text(f"SELECT {int(value)}")).scalar()}
    except Exception as error:  # noqa: BLE001 — a driver refuses an option it does not know with a TypeError, say
        return {"refused": refused(error)}


@probe
def _ping(engine, value):
    return _ping_now(engine, value)


@probe
def _pool_facts(engine, held):
    pool, lent = engine.pool, []
    facts = {"class": type(pool).__name__, "pool_size": pool.size() if hasattr(pool, "size") else None,
             "max_overflow": getattr(pool, "_max_overflow", None), "pool_pre_ping": getattr(pool, "_pre_ping", None),
             "pool_recycle": getattr(pool, "_recycle", None)}
    if isinstance(pool, sa.pool.QueuePool):
        try:
            lent = [engine.connect() for _ in range(held)]
            facts["out"] = pool.checkedout()
        except Exception as error:  # noqa: BLE001 — an engine option the driver refuses
            facts["refused"] = refused(error)
            return facts
        finally:
            for conn in lent:
                conn.close()
        facts["after"] = pool.checkedout()
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
        raw.close()  # behind the pool's back
        facts["revived"] = _ping_now(engine, 1)
    return facts


@probe
def _url_facts(engine):
    url = engine.url
    sqlite, where = url.drivername.startswith("sqlite"), f"`{url.render_as_string(hide_password=True)}`"
    memory = sqlite and url.database in (None, "", ":memory:")
    if sqlite and not memory:
        path = os.path.abspath(url.database)
        where = f"the SQLite file `{os.path.relpath(path) if path.startswith(os.getcwd()) else os.path.basename(path)}`"
    return {"driver": url.drivername, "memory": memory, "where": where}


@probe
def _watch_session(app, db, methods):
    @app.after_request
    def watch(response):
        if request.method in methods:
            try:
                db.session.execute(sa.select(1)).scalar()
                _sessions.append(None)
            except sa.exc.SQLAlchemyError as error:
                _sessions.append(type(error).__name__)
        return response


class _Keep(logging.Handler):
    def emit(self, record):
        _records.append(record)


@probe
def _watch_log(app):
    logger = app.logger
    logger.removeHandler(default_handler)  # kept for the check, not printed
    logger.addHandler(_Keep(logging.ERROR))


@probe
def _logged():
    return [{"level": r.levelname, "exception": [c.__name__ for c in type(r.exc_info[1]).__mro__]
             if r.exc_info and r.exc_info[1] is not None else []} for r in _records]


@probe
def _add_required_column(url, db, name, column):
    metadata = sa.MetaData()
    for tab in db.metadata.tables.values():  # all of them, so that foreign keys still resolve
        tab.to_metadata(metadata)
    tab = metadata.tables[name]
    tab.append_column(sa.Column(column, sa.Integer, nullable=False))
    try:
        with connection(url).begin() as conn:
            if conn.dialect.name == "postgresql":  # other tables' foreign keys to it go too
                conn.execute(sa.text(f'DROP TABLE "{name}" CASCADE'))
            else:
                tab.drop(conn)
            tab.create(conn)
    except sa.exc.SQLAlchemyError as error:
        return {"refused": refused(error)}
    _tables[name] = tab
    return {"ok": True}


@probe
def _session_checks():
    return list(_sessions)


@probe
def _push(app, path):
    context = app.test_request_context(path) if path else app.app_context()
    context.push()
    _contexts.append(context)


@probe
def _pop():
    if _contexts:
        try:
            _contexts.pop().pop()
        except Exception as error:  # noqa: BLE001 — a context the learner's code left in disorder
            return refused(error)
    return None


@probe
def _rows(url, name, where, columns, order_by):
    try:
        tab = table(url, name)
        statement = sa.select(*([tab.c[c] for c in columns] if columns else [tab])).where(*_where(tab, where))
        statement = statement.order_by(*([tab.c[order_by]] if order_by else tab.primary_key.columns))
        with connection(url).connect() as conn:
            return {"ok": [plain(dict(row._mapping)) for row in conn.execute(statement)]}
    except (sa.exc.SQLAlchemyError, KeyError) as error:  # KeyError: a column the table does not have
        return {"refused": refused(error)}


@probe
def _count(url, name, where):
    try:
        tab = table(url, name)
        with connection(url).connect() as conn:
            return {"ok": conn.execute(sa.select(sa.func.count()).select_from(tab).where(*_where(tab, where))).scalar_one()}
    except (sa.exc.SQLAlchemyError, KeyError) as error:
        return {"refused": refused(error)}


def _run(conn, url, op):
    kind, name = op[0], op[1]
    if kind == "sql":
        result = conn.execute(sa.text(name), op[2])
        return [plain(tuple(row)) for row in result] if result.returns_rows else result.rowcount
    tab = table(url, name)
    if kind == "insert":
        rows, key = op[2], list(tab.primary_key.columns)
        if not rows:
            return []
        if len(key) == 1 and conn.dialect.insert_executemany_returning_sort_by_parameter_order:
            return list(conn.execute(sa.insert(tab).returning(key[0], sort_by_parameter_order=True), rows).scalars())
        found = [conn.execute(sa.insert(tab).values(**row)).inserted_primary_key for row in rows]
        return [plain(k[0] if len(k) == 1 else tuple(k)) for k in found]
    where, values, add = op[2], op[3], op[4]
    values = {**values, **{column: tab.c[column] + delta for column, delta in add.items()}}
    return conn.execute(sa.update(tab).where(*_where(tab, where)).values(**values)).rowcount


def _run_all(url, ops) -> dict:
    try:
        with connection(url).begin() as conn:
            return {"ok": [_run(conn, url, op) for op in ops]}
    except (sa.exc.SQLAlchemyError, KeyError) as error:
        return {"refused": refused(error)}


@probe
def _write(url, ops):
    return _run_all(url, ops)


@probe
def _query(url, sql, params, fresh):
    try:
        with connection(url, fresh).connect() as conn:
            return {"ok": [plain(tuple(row)) for row in conn.execute(sa.text(sql), params)]}
    except sa.exc.SQLAlchemyError as error:
        return {"refused": refused(error)}


TYPES = {"id": lambda: sa.Integer, "int": lambda: sa.Integer, "str": lambda: sa.String(200), "bool": lambda: sa.Boolean}


@probe
def _create_table(url, name, columns, rows):
    tab = sa.Table(name, sa.MetaData(), *(sa.Column(c, TYPES[kind](), primary_key=kind == "id")
                                          for c, kind in columns.items()))
    _tables[name] = tab
    try:
        with connection(url).begin() as conn:
            tab.create(conn)
            if rows:
                conn.execute(sa.insert(tab), rows)
    except sa.exc.SQLAlchemyError as error:
        return {"refused": refused(error)}
    return {"ok": None}


@probe
def _create_tables(url, db):
    try:
        with connection(url).begin() as conn:
            db.metadata.create_all(conn)
    except sa.exc.SQLAlchemyError as error:
        return {"refused": refused(error)}
    _tables.update(db.metadata.tables)
    return {"ok": None}


@probe
def _statement(url, name, columns, order_by):
    tab = table(url, name)
    statement = sa.select(*([tab.c[c] for c in columns] if columns else [tab]))
    return statement.order_by(tab.c[order_by]) if order_by else statement


def _identity(value):
    """A mapped object as its primary key; anything else as plain data."""
    try:
        state = sa.inspect(value)
    except sa.exc.NoInspectionAvailable:
        return plain(value)
    identity = getattr(state, "identity", None)
    if identity is None:
        return repr(value)
    return plain(identity[0] if len(identity) == 1 else tuple(identity))


@probe
def _execute(db, statement):
    try:
        return {"ok": [tuple(_identity(v) for v in row) for row in db.session.execute(statement)]}
    except sa.exc.SQLAlchemyError as error:
        return {"refused": refused(error)}


@probe
def _sql_of(statement, engine):
    try:
        return " ".join(str(statement.compile(dialect=engine.dialect)).split())
    except (sa.exc.SQLAlchemyError, AttributeError, TypeError):
        return ""


def _take(obj, spec, path: str):
    if isinstance(obj, (list, tuple, set, frozenset)):  # a relationship's collection
        return [_take(item, spec, f"{path}[{n}]") for n, item in enumerate(obj)]
    if obj is None:
        return None
    names = spec.items() if isinstance(spec, dict) else ((name, None) for name in spec)
    taken = {}
    for name, inner in names:
        where = f"{path}.{name}"
        try:
            value = getattr(obj, name)
        except (AttributeError, sa.exc.SQLAlchemyError) as error:
            raise _Missing(where, error) from None
        taken[name] = _take(value, inner, where) if inner is not None else plain(value)
    return taken


class _Missing(Exception):
    def __init__(self, where, error):
        super().__init__(f"{where}: {error}")
        self.where, self.error = where, error


@probe
def _snapshot(obj, spec):
    try:
        return {"ok": _take(obj, spec, type(obj).__name__.lower())}
    except _Missing as missing:
        data = refused(missing.error)
        data["message"] = f"{missing.where}: {data['message']}"
        return {"refused": data}


def _column(column) -> dict:
    try:
        python = column.type.python_type.__name__
    except Exception:  # noqa: BLE001 — NotImplementedError, or a custom type's own failure
        python = None
    return {"python": python, "type": repr(column.type), "length": getattr(column.type, "length", None),
            "nullable": column.nullable, "primary_key": column.primary_key, "unique": bool(column.unique),
            "foreign_keys": sorted(fk.target_fullname for fk in column.foreign_keys)}


def _facts(db, cls) -> dict:
    """A model as data: `model` (a subclass of `db.Model`), `table`, `columns` (name -> `_column`),
    `relationships` (name -> target class, `many`, `back_populates`, cascade), `attributes` (every mapped
    name), `uniques` (column-name lists), `checks` (name, SQL), `indexes` (name -> columns), `version`."""
    facts = {"model": isinstance(cls, type) and issubclass(cls, db.Model), "mapped": False}
    try:
        mapper = sa.inspect(cls)
    except sa.exc.NoInspectionAvailable:
        return facts
    tab, version = mapper.local_table, mapper.version_id_col
    facts.update(plain({
        "mapped": True, "table": tab.name, "attributes": sorted(mapper.attrs.keys()),
        "columns": {c.name: _column(c) for c in tab.columns},
        "relationships": {r.key: {"target_name": r.mapper.class_.__name__, "many": r.uselist,
                                  "back_populates": r.back_populates, "cascade": sorted(r.cascade),
                                  "passive_deletes": r.passive_deletes} for r in mapper.relationships},
        "uniques": sorted({tuple(sorted(c.name for c in u.columns)) for u in tab.constraints
                           if isinstance(u, sa.UniqueConstraint)} | {(c.name,) for c in tab.columns if c.unique}),
        "checks": [(c.name if isinstance(c.name, str) else None, str(c.sqltext)) for c in tab.constraints
                   if isinstance(c, sa.CheckConstraint)],
        "indexes": {i.name: [c.name for c in i.columns] for i in tab.indexes},
        "version": version.name if isinstance(version, sa.Column) else None,
        # what `version_id_col` was given when it is no column (the column's name as text, say)
        "version_given": None if version is None or isinstance(version, sa.Column) else safe_repr(version, 80),
    }))
    for r in mapper.relationships:  # the class itself, as a handle: the judge compares it with the models'
        facts["relationships"][r.key]["target"] = r.mapper.class_
    return facts


@probe
def _describe(db, models):
    try:
        return {"ok": {name: _facts(db, cls) for name, cls in models.items()}}
    except sa.exc.SQLAlchemyError as error:  # mappers that cannot be configured
        return {"refused": refused(error)}


@probe
def _listen(engine, url, pattern, ops):
    token = next(_tokens)
    state = {"statements": [], "done": False, "refused": None, "results": None}

    def hook(conn, cursor, statement, parameters, context, executemany):
        state["statements"].append((" ".join(statement.split()), plain(parameters)))
        if pattern and not state["done"] and re.match(pattern, statement, re.I):
            state["done"] = True
            answer = _run_all(url, ops)
            state["results"], state["refused"] = answer.get("ok"), answer.get("refused")

    sa.event.listen(engine, "before_cursor_execute", hook)
    _listeners[token] = (engine, hook, state)
    return token


@probe
def _unlisten(token):
    engine, hook, state = _listeners.pop(token)
    sa.event.remove(engine, "before_cursor_execute", hook)
    return state


@probe
def _columns(url, name):
    try:
        return {"ok": [str(c) for c in table(url, name).c.keys()]}
    except sa.exc.SQLAlchemyError as error:
        return {"refused": refused(error)}


@probe
def _add_relationship(model, name, target, foreign_key):
    if name not in sa.inspect(model).relationships:
        key = sa.inspect(model).primary_key[0]
        setattr(model, name, relationship(target, viewonly=True, lazy="select",
                                          primaryjoin=key == sa.orm.foreign(getattr(target, foreign_key))))


@probe
def _race(engine, model, key, changes):
    sessions = [sa.orm.Session(engine) for _ in changes]
    try:
        rows = [session.get(model, key) for session in sessions]
        if any(row is None for row in rows):
            return {"refused": refused(LookupError(f"no row {key!r} of {getattr(model, '__name__', model)}"))}
        answers = []
        for session, row, change in zip(sessions, rows, changes):
            for name, value in change.items():
                setattr(row, name, value)
            try:
                session.commit()
                answers.append(None)
            except sa.exc.SQLAlchemyError as error:  # StaleDataError, say
                session.rollback()
                answers.append(refused(error))
        return {"ok": answers}
    except sa.exc.SQLAlchemyError as error:  # a model SQLAlchemy cannot map or read
        return {"refused": refused(error)}
    finally:
        for session in sessions:
            session.close()


def _operations(connection=None, **options):
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    return Operations.context(MigrationContext.configure(connection, **options))


@probe
def _migrate(url, module, function):
    try:
        with connection(url).begin() as conn, _operations(conn):
            getattr(module, function)()
    except sa.exc.SQLAlchemyError as error:  # an index on a column or table that is not there, say
        return refused(error)
    return None


@probe
def _migration_sql(module, function, dialect):
    import io

    written = io.StringIO()
    try:
        with _operations(dialect_name=dialect, opts={"as_sql": True, "output_buffer": written}):
            getattr(module, function)()
    except Exception as error:  # noqa: BLE001 — what offline mode cannot write (the online run came first)
        return {"refused": refused(error)}
    return {"ok": [" ".join(s.split()) for s in written.getvalue().split(";") if s.strip()]}


@probe
def _plan(url, sql, params):
    try:
        with connection(url, fresh=True).begin() as conn:
            if conn.dialect.name == "sqlite":
                return {"ok": [row[3] for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql), params)]}
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            return {"ok": [row[0] for row in conn.execute(sa.text("EXPLAIN " + sql), params)]}
    except sa.exc.SQLAlchemyError as error:
        return {"refused": refused(error)}


# --- warming up the check server ---------------------------------------------------------------------


def warm_up() -> None:
    """Run SQLAlchemy's and Flask-SQLAlchemy's usual paths once in the check server (a chapter's
    `chapter.warm_up(dbkit.warm_up)`), so that each forked check skips their first-use costs."""
    class Base(DeclarativeBase):
        pass

    db = flask_sqlalchemy.SQLAlchemy(model_class=Base)

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
        except sa.exc.IntegrityError:
            db.session.rollback()
        with app.test_request_context("/?page=1"):
            db.paginate(db.select(Parent).order_by(Parent.id), page=1, per_page=5, error_out=False)
        _facts(db, Parent)
        db.session.delete(db.session.get(Parent, 1))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    if os.environ.get("DATABASE_URL", "").startswith(("postgresql", "postgres:")):
        importlib.import_module("psycopg")
        importlib.import_module("sqlalchemy.dialects.postgresql.psycopg")


def warm_up_performance() -> None:
    """Run what chapter 05's checks use once in the check server: loader options and `raiseload`, a version
    counter (`version_id_col`), a report in `text()`, Alembic's operations (online and offline) and a query plan."""
    import io

    from alembic import op
    from sqlalchemy.orm import Session, joinedload, raiseload, selectinload

    class Base(DeclarativeBase):
        pass

    class Parent(Base):
        __tablename__ = "parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(20))
        version: Mapped[int] = mapped_column(server_default="1")
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
        session.execute(sa.select(Parent).options(selectinload(Parent.children), raiseload("*"))).scalar_one().name = "b"
        session.commit()
        session.execute(sa.select(Child).options(joinedload(Child.parent))).scalars().all()
        session.execute(sa.text("SELECT count(*) AS n FROM child WHERE parent_id = :p"), {"p": 1}).mappings().all()
    with engine.begin() as conn, _operations(conn):
        op.create_index("ix_child_id", "child", ["id"])
        op.drop_index("ix_child_id", table_name="child")
        conn.execute(sa.text("EXPLAIN QUERY PLAN SELECT id FROM child WHERE parent_id = 1")).all()
    with _operations(dialect_name="mysql", opts={"as_sql": True, "output_buffer": io.StringIO()}):
        op.drop_index("ix_child_id", table_name="child")
    engine.dispose()
