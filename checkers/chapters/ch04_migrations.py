"""Checks for chapter 04: migrations (Flask-Migrate wiring, batch mode, a model change, a data migration).

Alembic runs in the learner's process (probes) on the learner's `migrations/`, always on the check's
own database, `t.database_url()` (SQLite in the scratch folder, or a PostgreSQL schema when
DATABASE_URL is set). The probes report tables, columns, types as text, rows and what was refused;
the judge compares them with what it expects.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
from pathlib import Path

import flask_migrate
import sqlalchemy as sa
from alembic import command, op
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Blueprint, Flask
from flask_sqlalchemy import SQLAlchemy

from ..engine import workspace
from ..engine.databases import speed_up
from ..engine.judge import show
from ..engine.learner import learner_frame, probe
from ..notebook.api import Chapter
from .kit import app_from_factory

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "Migrations")
MIGRATIONS, SLUG_FILE = "migrations", "migrations/versions/0002_venue_slug.py"
INITIAL, SLUG = "0001_initial", "0002_venue_slug"
TABLES = ["alembic_version", "bookings", "events", "venues"]


def _rule(name: str, form: str = "NFKD", drop=lambda text: text.encode("ascii", "ignore").decode("ascii"),
          lower_first: bool = True, runs: str = r"[^a-z0-9]+", strip: str = "-") -> str:
    """The slug rule before its fallback; a keyword changes one step, as a near miss of it does."""
    plain = drop(unicodedata.normalize(form, name) if form else name)
    slug = re.sub(runs, "-", plain.lower()) if lower_first else re.sub(runs, "-", plain).lower()
    return slug.strip(strip)


def slugify(name: str) -> str:
    """The slug rule the chapter teaches: NFKD, ASCII only, lowercase, runs of anything but a-z and 0-9
    become one hyphen; a name with nothing left gets `venue-` and 8 hex digits of its SHA-1."""
    return _rule(name) or "venue-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]


WHOLE = ("\"é\" stays one character and is dropped with its letter (\"Café\" gives \"caf\"): do you "
         "`unicodedata.normalize(\"NFKD\", name)` first? NFC and NFKC keep \"é\" whole; NFKD splits it into \"e\" "
         "and an accent.")
SLUG_NEAR_MISSES = [  # (a near miss of the rule, the hint that names its step): the first that gives what was seen
    (lambda n: _rule(n, form="NFD"), "NFD leaves a ligature such as \"ﬁ\" whole, and it is dropped: the rule "
     "needs `unicodedata.normalize(\"NFKD\", name)`, which turns it into \"fi\"."),
    (lambda n: _rule(n, form=""), WHOLE), (lambda n: _rule(n, form="NFC"), WHOLE), (lambda n: _rule(n, form="NFKC"), WHOLE),
    (lambda n: _rule(n, drop=lambda text: "".join(c for c in text if not unicodedata.combining(c))),
     "A letter NFKD cannot split, such as \"ø\", must go, not become a hyphen: drop every character that is "
     "still not ASCII, `.encode(\"ascii\", \"ignore\").decode(\"ascii\")`."),
    (lambda n: _rule(n, drop=lambda text: text), "The accents NFKD splits off are still there, and become "
     "hyphens: after normalising, drop what is not ASCII, `.encode(\"ascii\", \"ignore\").decode(\"ascii\")`."),
    (lambda n: _rule(n, lower_first=False), "Capitals become hyphens: lowercase before the `re.sub(...)`."),
    (lambda n: _rule(n, runs=r"[^a-z0-9]"), "Each run of other characters gives one hyphen: `[^a-z0-9]+`, with the `+`."),
    (lambda n: _rule(n, strip=""), "No hyphen at either end: `.strip(\"-\")` after the `re.sub(...)`."),
    (lambda n: _rule(n, runs=r"\W+"), "An underscore is not a letter or a digit: `[^a-z0-9]+`, not `\\W+`, "
     "turns it into a hyphen."),
]


def _slug_hint(name: str, seen) -> str:
    """The hint for a wrong slug: the step a known near miss changed, or the whole rule."""
    if not _rule(name):
        return ("Nothing of this name is left by the rule, so its slug is `\"venue-\"` and the first 8 hex digits of "
                "its SHA-1: `hashlib.sha1(name.encode(\"utf-8\")).hexdigest()[:8]`.")
    return next((hint for rule, hint in SLUG_NEAR_MISSES if rule(name) == seen), HINTS["slug"])


def unique_slugs(names: list[str]) -> list[str]:
    """The backfill's slugs for venues named `names`, in id order: a taken slug gets -2, -3, ... (the first free)."""
    given: list[str] = []
    for name in names:
        slug, number = slugify(name), 2
        while slug in given:
            slug, number = f"{slugify(name)}-{number}", number + 1
        given.append(slug)
    return given


# --- probes (in the learner's process): they run Alembic and SQL, and report what they saw ----------

_engines: dict[str, sa.Engine] = {}  # the probes' own engines, by database URL
_apps: dict[str, Flask] = {}  # the check's migration apps, by database URL


def _engine(url: str) -> sa.Engine:
    if url not in _engines:
        _engines[url] = sa.create_engine(url)
        speed_up(_engines[url])
    return _engines[url]


def _refusal(error: BaseException) -> dict:
    """What Alembic, SQLAlchemy or the database refused, with the learner's line."""
    cause = getattr(error, "orig", None) or error
    text, frame = str(cause).replace(os.getcwd() + os.sep, "").strip().splitlines(), learner_frame(error, Path.cwd())
    return {"kind": type(error).__name__, "type": type(cause).__name__, "db": isinstance(error, sa.exc.DBAPIError),
            "message": text[0][:160] if text else "", "where": frame.splitlines()[0] if frame else None}


def _migration_app(url: str, directory: str) -> Flask:
    """An app whose Flask-Migrate runs `directory` on `url`, with a `SQLAlchemy` of its own (not the learner's)."""
    app, database = Flask("check"), SQLAlchemy()
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    database.init_app(app)
    flask_migrate.Migrate(app, database, directory=os.path.abspath(directory), render_as_batch=True, compare_type=True)
    with app.app_context():
        if database.engine.dialect.name == "sqlite":  # as tickethub/db.py does
            sa.event.listen(database.engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys = ON"))
        speed_up(database.engine)
    return app


@probe
def _alembic(app, what: str, revision: str, directory: str = MIGRATIONS):
    """`alembic.command.<what>(revision)` through the app's Flask-Migrate, as `flask db` runs it.

    `app` is the learner's app, or a database URL: then a migration app of the check's, one per URL.
    """
    if isinstance(app, str):
        app = _apps.get(app) or _apps.setdefault(app, _migration_app(app, directory))
    with app.app_context():
        bound = app.extensions["migrate"]
        config = bound.migrate.get_config(os.path.abspath(bound.directory))
        config.stdout = io.StringIO()
        try:
            getattr(command, what)(config, revision)
        except (CommandError, NotImplementedError, sa.exc.StatementError) as error:
            return _refusal(error)
        except ImportError as error:  # Alembic's, for a file missing from `migrations/`
            if learner_frame(error, Path.cwd()):
                raise
            return _refusal(error)


@probe
def _operations(function, url: str):
    """Run a migration function with `op` bound to the database at `url`, as Alembic runs it."""
    try:
        with _engine(url).begin() as connection, Operations.context(MigrationContext.configure(connection)):
            function()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError, NotImplementedError) as error:
        return _refusal(error)


@probe
def _sql(url: str, *statements):
    """Run statements (text, or [text, rows]) in one transaction: each one's rows, or what was refused."""
    try:
        rows = []
        with _engine(url).begin() as connection:
            for statement in statements:
                text, *values = [statement] if isinstance(statement, str) else statement
                result = connection.execute(sa.text(text), *values)
                rows.append([tuple(row) for row in result] if result.returns_rows else [])
        return {"rows": rows}
    except sa.exc.DBAPIError as error:
        return {"refused": _refusal(error)}


@probe
def _schema(url: str, *tables: str):
    """The tables and `alembic_version`; for each of `tables`, its columns (type, nullable) and constraints."""
    with _engine(url).connect() as connection:
        inspector = sa.inspect(connection)
        names = sorted(inspector.get_table_names())
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars() \
            if "alembic_version" in names else []
        seen = {"tables": names, "version": sorted(version)}
        for table in (name for name in tables if name in names):
            seen[table] = {
                "columns": {c["name"]: [str(c["type"]), c["nullable"]] for c in inspector.get_columns(table)},
                "unique": sorted(([str(u["name"]), u["column_names"]]
                                  for u in inspector.get_unique_constraints(table)), key=str),
                "foreign_keys": sorted([f["constrained_columns"], f["referred_table"], f["referred_columns"]]
                                       for f in inspector.get_foreign_keys(table)),
                "indexes": sorted(([str(i["name"]), i["column_names"], i["unique"]] for i in inspector.get_indexes(table)
                                   if "duplicates_constraint" not in i), key=str)}
    return seen


@probe
def _chain(revision: str):
    """The revision's `down_revision` and the heads, as Alembic reads the project's `migrations/`."""
    try:
        scripts = ScriptDirectory(os.path.abspath(MIGRATIONS))
        script = scripts.get_revision(revision)
        return {"found": script is not None, "down": getattr(script, "down_revision", None),
                "heads": list(scripts.get_heads())}
    except CommandError as error:
        return {"refused": _refusal(error)}


@probe
def _slug_app(url: str, db, venues, register_error_handlers):
    """An app on `url` with the learner's `db` and venues blueprint, its tables made by `create_all()`."""
    app = Flask("tickethub")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=url)
    db.init_app(app)
    app.register_blueprint(venues, url_prefix="/api/venues")
    register_error_handlers(app)
    with app.app_context():
        speed_up(db.engine)
        db.create_all()
    return app


@probe
def _save(app, model, rows: list[dict]):
    """Add `model(**row)` for each row through the app's session and commit; what the database refused."""
    session = app.extensions["sqlalchemy"].session
    with app.app_context():
        try:
            session.add_all([model(**row) for row in rows])
            session.commit()
        except (TypeError, sa.exc.IntegrityError) as error:  # TypeError: the model has no such column
            if isinstance(error, TypeError) and learner_frame(error, Path.cwd()):
                raise
            session.rollback()
            return _refusal(error)


# --- the judge's helpers --------------------------------------------------------------------------

HINTS = {
    "command": "Are the revision ids as given: `revision = \"0002_venue_slug\"`, `down_revision = \"0001_initial\"`? "
               "Is `migrations/` complete (`env.py`, `alembic.ini`, `script.py.mako`, which the setup cell gives, and "
               "`versions/0001_initial.py`, which a cell writes)? Run `setup()` again to put back a missing file.",
    "batch": "SQLite cannot add or drop a constraint with `ALTER TABLE`: did you do it inside "
             "`with op.batch_alter_table(...) as batch_op:`, with `batch_op.create_unique_constraint(...)`?",
    "alter": "SQLite's `ALTER TABLE` cannot change a column's type. Did you make the change inside "
             "`with op.batch_alter_table(\"halls\") as batch_op:`, with `batch_op.alter_column(...)`?",
    "initial": "Is `migrations/versions/0001_initial.py` as the notebook's cell wrote it?",
    "slug": "The rule, in order: `unicodedata.normalize(\"NFKD\", name)`, then drop what is not ASCII "
            "(`.encode(\"ascii\", \"ignore\").decode(\"ascii\")`); lowercase; every run of characters other than "
            "a-z and 0-9 becomes one hyphen (`re.sub(r\"[^a-z0-9]+\", \"-\", ...)`), none at the ends; and when nothing "
            "is left, `\"venue-\" + hashlib.sha1(name.encode(\"utf-8\")).hexdigest()[:8]`. Which step differs?",
}
MIGRATION_HINTS = [  # (a pattern of what the database said, the hint)
    ("FOREIGN KEY constraint failed",
     "SQLite refuses to drop `venues`, which batch mode rebuilds, while events refer to it. Is the batch block inside "
     "`foreign_keys_off()`: `with foreign_keys_off(), op.batch_alter_table(\"venues\") as batch_op:`?"),
    ("syntax error",
     "SQLite's `ALTER TABLE` cannot change a column or add a constraint. Did you make those changes "
     "inside `with op.batch_alter_table(\"venues\") as batch_op:`, through `batch_op`?"),
    ("null", "Did you add the column with `nullable=True` first, give every venue its slug, and only then make it "
     "`nullable=False` (in the batch block)?"),
    ("duplicate column",
     "Is the column added twice? Add it once with `op.add_column(...)`, then change it in the batch block."),
    ("unique|duplicate",
     "Did two venues get the same slug? Names such as \"The Old Mill\" and \"the old mill!\" give the same one: "
     "remember the slugs given so far, and number a taken one (`-2`, `-3`, ...)."),
    ("a value is required for bind parameter",
     "Are there rows to update at all? With no venues, an `execute()` with an empty list of parameters fails: "
     "skip the backfill when there are no rows."),
    ("already exists",
     "Is something left over from before? Does `downgrade()` drop both the constraint and the column?"),
]


def _ran(t, refusal, action: str, hint: str | None = None, on: str = "") -> None:
    """Fail the step when a probe reports a refusal: what was refused, where, and why it may be."""
    if not refusal:
        return
    text, where = refusal.get("message"), f", in `{refusal['where']}`" if refusal.get("where") else ""
    if refusal.get("kind") in ("CommandError", "ImportError"):
        t.fail(f"{action} runs{on}", f"Alembic says: `{text}`", HINTS["command"])
    if refusal.get("kind") == "NotImplementedError":
        t.fail(f"{action} runs{on or ' on SQLite'}", f"`NotImplementedError: {text}`{where}", hint or HINTS["batch"])
    hint = hint or next((h for pattern, h in MIGRATION_HINTS if re.search(pattern, str(text), re.I)),
                        "Does the migration run on a database at `0001_initial` that has venues in it?")
    who = "the database" if refusal.get("db") else "SQLAlchemy"
    t.fail(f"{action} runs{on}", f"{who} refused it: `{refusal.get('type')}: {text}`{where}", hint)


def _migrated(t, app, what: str, revision: str, action: str | None = None) -> None:
    _ran(t, t.probe(_alembic, app, what, revision), action or f"`{what} {revision}`")


def _rows(t, url: str, *statements) -> list[list[tuple]]:
    answer = t.probe(_sql, url, *statements)
    _ran(t, answer.get("refused"), f"`{statements[0] if isinstance(statements[0], str) else statements[0][0]}`")
    return answer["rows"]


def _insert(table: str, columns: str, rows: list[tuple]) -> list:
    names = [c.strip() for c in columns.split(",")]
    return [f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + n for n in names)})",
            [dict(zip(names, row)) for row in rows]]


def _tables_are(t, url: str, tables: list[str], version: list[str], action: str) -> None:
    seen = t.probe(_schema, url)
    t.require(seen["tables"] == tables and seen["version"] == version,
              f"after {action}, the tables {show(tables)}, and `alembic_version` holding {show(version)}",
              f"the tables {show(seen['tables'])}, `alembic_version` {show(seen['version'])}", HINTS["initial"])


# --- exercise 1: Flask-Migrate in db.py -------------------------------------------------------------

ex1 = chapter.exercise(
    "Wire Flask-Migrate into TicketHub",
    hints=[
        "Flask-Migrate follows the same pattern as Flask-SQLAlchemy: one object at module level, "
        "`migrate = Migrate(...)`, and `migrate.init_app(app, db)` inside `init_db(app)`, which the factory "
        "calls for every app it makes.",
        "`Migrate` takes its options as keywords: `Migrate(render_as_batch=True)`. Types are compared unless "
        "you pass `compare_type=False`. `init_app` needs the app *and* the database: without `db`, Alembic has "
        "no engine to migrate.",
        "`migrate = Migrate(render_as_batch=True)` just below `db = SQLAlchemy(...)`, and "
        "`migrate.init_app(app, db)` right after `db.init_app(app)` in `init_db`.",
    ],
)
ex1.defines("tickethub.db", functions=["init_db"], db=SQLAlchemy)


SETTINGS = {  # what the exercise asks of Migrate's options, and the hint when one is off
    "render_as_batch": "Did you pass `render_as_batch=False`? TicketHub's migrations must run on SQLite: "
                       "`Migrate(render_as_batch=True)`.",
    "compare_type": "Did you pass `compare_type=False`? Autogenerate must see type changes; Alembic and "
                    "Flask-Migrate compare types unless told not to.",
}


def _settings(t, options, directory, whose: str) -> None:
    for name, hint in SETTINGS.items():
        value = options.get(name) if isinstance(options, dict) else None
        t.require(value is True, f"`{name}` on (`True`) {whose}", f"`{name}` is {show(value)}", hint)
    t.require(directory == MIGRATIONS, f"the migrations in `{MIGRATIONS}/`, Flask-Migrate's default, {whose}",
              f"`directory` is {show(directory)}", "Did you pass a `directory=`? Leave it out: TicketHub's "
              "migrations are in `migrations/`, beside `tickethub/`.")


@ex1.step("`tickethub/db.py` defines `migrate`, a `flask_migrate.Migrate`")
def _migrate_object(t, names):
    migrate = t.get(names.module, "migrate")
    t.require(t.isa(migrate, flask_migrate.Migrate), "`migrate = Migrate(...)` in `tickethub/db.py`",
              lambda: f"`migrate` is {show(migrate)}",
              "Did you write `migrate = Migrate(render_as_batch=True)` below `db = SQLAlchemy(...)`?")
    return names.db, migrate


@ex1.step("`migrate` renders batch operations and compares column types (`render_as_batch`, `compare_type`)")
def _migrate_options(t, state):
    _settings(t, t.get(state[1], "alembic_ctx_kwargs"), t.get(state[1], "directory"), "in `Migrate(...)`")
    return state


@ex1.step("every app from `create_app()` gets `migrate`, bound to `db`, with the `flask db` commands")
def _bound(t, state):
    db, migrate = state
    app = app_from_factory(t, {"TESTING": True, "SQLALCHEMY_DATABASE_URI": t.database_url()})
    extensions = t.get(app, "extensions")
    bound = extensions.get("migrate") if isinstance(extensions, dict) else None
    t.require(bound is not None and t.get(bound, "migrate") == migrate,
              "`app.extensions[\"migrate\"]`, set by `migrate.init_app(app, db)`",
              "the app has no Flask-Migrate" if bound is None else "it belongs to another `Migrate` object",
              "Do you call `migrate.init_app(app, db)` inside `init_db(app)`?")
    bound_db = t.get(bound, "db")
    t.require(bound_db == db, "Flask-Migrate knows TicketHub's `db`", lambda: f"it has {show(bound_db)}",
              "Did you pass `db` too: `migrate.init_app(app, db)`? Without it Alembic has no engine.")
    _settings(t, t.get(bound, "configure_args"), t.get(bound, "directory"), "in the app's Flask-Migrate")
    commands = t.get(t.get(app, "cli"), "commands")
    commands = sorted(commands) if isinstance(commands, dict) else []
    t.require("db" in commands and "init-db" in commands, "the commands `flask db` and `flask init-db`",
              f"the app's commands: {show(commands)}", "Did you keep `app.cli.add_command(init_db_command)`?")
    return app


@ex1.step("through your app, `upgrade 0001_initial` creates chapter 03's tables and `downgrade base` removes them")
def _upgrade(t, app):
    _migrated(t, app, "upgrade", INITIAL)
    _tables_are(t, t.database_url(), TABLES, [INITIAL], f"`upgrade {INITIAL}`")
    _migrated(t, app, "downgrade", "base")
    _tables_are(t, t.database_url(), ["alembic_version"], [], "`downgrade base`")


# --- exercise 2: a rename in batch mode -------------------------------------------------------------------

ex2 = chapter.exercise(
    "A rename that keeps its data, in batch mode",
    hints=[
        "A rename is one `alter_column` with `new_column_name=`: dropping `town` and adding `city` (what "
        "autogenerate writes) throws every town away. On SQLite, changing the type needs batch mode: "
        "`with op.batch_alter_table(\"halls\") as batch_op:`, then `batch_op.alter_column(...)`.",
        "In one call: `batch_op.alter_column(\"town\", new_column_name=\"city\", existing_type=sa.String(length=40), "
        "type_=sa.String(length=80))`. `downgrade()` is the mirror image, from `city` back to `town`.",
        "upgrade: `with op.batch_alter_table(\"halls\") as batch_op:` / `batch_op.alter_column(\"town\", "
        "new_column_name=\"city\", existing_type=sa.String(length=40), type_=sa.String(length=80), existing_nullable=True)`. "
        "downgrade: the same with `\"city\"`, `new_column_name=\"town\"`, `existing_type=sa.String(length=80)`, "
        "`type_=sa.String(length=40)`.",
    ],
)
ex2.defines("rename_town", path="playground/rename_town.py", functions=["upgrade", "downgrade"])
HALLS = ("CREATE TABLE halls (id INTEGER NOT NULL, name VARCHAR(80) NOT NULL, town VARCHAR(40), "
         "CONSTRAINT pk_halls PRIMARY KEY (id), CONSTRAINT uq_halls_name UNIQUE (name))")


def _halls(t) -> list[tuple]:
    """Random halls, always with one that has no town and one whose town fills all of `String(40)`."""
    towns = [" ".join(t.word().title() for _ in range(t.rng.randrange(1, 5))) for _ in range(t.rng.randrange(4, 9))]
    towns[1], towns[2] = None, (towns[2] + " ") * 9
    return [(i, f"{t.word().title()} Hall {i}", town and town[:40]) for i, town in enumerate(towns, 1)]


def _check_halls(t, url: str, label: str, column: str, length: int, other: str, wanted: list, after: str) -> None:
    table = t.probe(_schema, url, "halls").get("halls", {"columns": {}, "unique": []})
    columns = table["columns"]
    t.require(column in columns and other not in columns,
              f"after `{after}` on {label}, the column `halls.{column}` and no `halls.{other}`",
              f"the columns {show(list(columns))}", "Did you rename with `new_column_name=`?"
              if after == "upgrade()" else "Does `downgrade()` rename `city` back to `town`?")
    t.require(columns[column][0] == f"VARCHAR({length})", f"`halls.{column}` is `String({length})` on {label}",
              f"it is `{columns[column][0]}`", f"Did you pass `type_=sa.String(length={length})` to `alter_column`?")
    seen = _rows(t, url, f"SELECT id, name, {column} FROM halls ORDER BY id")[0]
    lost = [f"{name!r}: {show(old)} became {show(new)}" for (_, name, old), (_, _, new) in zip(wanted, seen) if old != new]
    t.require(seen == wanted, f"every hall keeps its town, now in `{column}`, on {label}",
              "; ".join(lost[:3]) if lost else f"the rows {show(seen)}",
              "Did you drop one column and add another? That is what autogenerate writes for a rename, and it "
              "throws the data away. Rename it: `alter_column(\"town\", new_column_name=\"city\", ...)`.")
    uniques = [name for name, _ in table["unique"]]
    t.require("uq_halls_name" in uniques, f"the unique constraint `uq_halls_name` is still there on {label}",
              f"the unique constraints: {show(uniques)}",
              "Did you rebuild the table yourself? `op.batch_alter_table` copies the constraints for you.")


@ex2.step("`upgrade()` renames `halls.town` to `city` and widens it to `String(80)`, keeping every value (SQLite batch mode)")
def _rename_up(t, names):
    url, halls = t.database_url(), _halls(t)  # SQLite always (batch mode is for SQLite), DATABASE_URL's too
    urls = [("SQLite", url)] if url.startswith("sqlite") else [
        ("SQLite", f"sqlite:///{t.scratch / 'halls.sqlite'}"), ("PostgreSQL", url)]
    for label, url in urls:
        _rows(t, url, "DROP TABLE IF EXISTS halls", HALLS, _insert("halls", "id, name, town", halls))
        _ran(t, t.probe(_operations, names.upgrade, url), "`upgrade()`", HINTS["alter"], f" on {label}")
        _check_halls(t, url, label, "city", 80, "town", halls, "upgrade()")
    return names, urls, halls


@ex2.step("`downgrade()` gives back `halls.town`, `String(40)`, with every value")
def _rename_down(t, state):
    names, urls, halls = state
    for label, url in urls:
        _ran(t, t.probe(_operations, names.downgrade, url), "`downgrade()`", HINTS["alter"], f" on {label}")
        _check_halls(t, url, label, "town", 40, "city", halls, "downgrade()")


# --- exercise 3: the slug in the model -----------------------------------------------------------------

ex3 = chapter.exercise(
    "The slug in the model",
    hints=[
        "Two parts. `slugify(name)` is the rule, step by step: `unicodedata.normalize(\"NFKD\", name)`, then "
        "`.encode(\"ascii\", \"ignore\").decode(\"ascii\")` drops what is not ASCII; `re.sub(r\"[^a-z0-9]+\", \"-\", "
        "plain.lower()).strip(\"-\")`; and the fallback when that is empty. The column gets its value from a "
        "`default=`: a function SQLAlchemy calls with a `context` for each venue inserted without a slug.",
        "The fallback: `slug or \"venue-\" + hashlib.sha1(name.encode(\"utf-8\")).hexdigest()[:8]`. The default: "
        "`def _slug_from_name(context): return slugify(context.get_current_parameters()[\"name\"])`, defined "
        "above `Venue`, which `slug` then names.",
        "In `Venue`, below `name`: `slug: Mapped[str] = mapped_column(String(140), unique=True, "
        "default=_slug_from_name)`. `Mapped[str]` makes it `NOT NULL`; a default is only used when no slug is given.",
    ],
)
ex3.defines("tickethub.models", classes=["Venue"], functions=["slugify"])
GIVEN = (("tickethub.db", "db", SQLAlchemy), ("tickethub.venues", "bp", Blueprint),
         ("tickethub.errors", "register_error_handlers", None))
NO_LATIN = ["東京ドーム", "大阪城ホール", "Ωμέγα Θέατρο", "★★★", "—"]  # nothing left once only ASCII is kept


def _venue_names(t) -> list[str]:
    """Names whose slugs tell the rule from its near misses, all of them every time; the words are random."""
    a, b, c, d = (t.word() for _ in range(4))
    n, pick = t.rng.randrange(1, 998), t.rng.choice
    return [f"{a.title()}{pick([' & ', ' + ', ', '])}{b.upper()} {n}",  # upper case, runs of separators, digits
            f"{pick(['...', '¡', '('])}{b.title()}'s {c.title()}{pick(['!', ')', '.'])}",  # punctuation at both ends
            f"{c.upper()} -- {d.title()}  / (North)",  # hyphens and spaces together
            f"{d.title()}_{a} Café {n + 1}",  # an underscore, an accented letter
            f"{pick(['Crème', 'Señor', 'Ähre'])} {b.title()} Müller",  # accents, one of them capital
            f"Bjørn's {c.title()}",  # a letter NFKD cannot make ASCII: dropped, not a separator
            f"The {d.title()} ﬁeld",  # a ligature: NFKD (not NFD) makes it "fi"
            *t.rng.sample(NO_LATIN, 2)]  # nothing left: two different fallbacks


@ex3.step("`slugify(name)` follows TicketHub's slug rule (accents off, ASCII only, hyphens, a fallback)")
def _slug_rule(t, names):
    for name in _venue_names(t):
        slug = names.slugify(name)  # what it raises is the learner's error, shown with their line
        t.require(type(slug) is str, f"`slugify({name!r})` returns the slug, a `str`", f"it returned {show(slug)}",
                  "Does `slugify` end with `return slug`?")
        t.require(slug == slugify(name), f"`slugify({name!r})` returns {slugify(name)!r}", f"it returned {slug!r}",
                  _slug_hint(name, slug))
    return names


@ex3.step("`Venue.slug` is a `String(140)` column, required and unique (in the table `create_all()` makes)")
def _slug_model(t, names):
    given = [t.get(t.module(module), name) for module, name, _ in GIVEN]
    t.require(all(t.isa(v, kind) if kind else getattr(v, "is_callable", False) for v, (*_, kind) in zip(given, GIVEN)),
              "chapter 03's `db`, the venues blueprint `bp` and `register_error_handlers`, as they were",
              f"`db` is {show(given[0])}, `bp` is {show(given[1])}, `register_error_handlers` is {show(given[2])}",
              "Did you change `tickethub/db.py`, `tickethub/venues/` or `tickethub/errors.py`? This chapter keeps them.")
    table, name = t.get(names.Venue, "__table__"), t.get(names.Venue, "__tablename__")
    t.require(t.isa(table, sa.Table) and name == "venues", "`Venue`, the model of the table `venues`",
              f"`Venue.__tablename__` is {show(name)}", "Did you keep `class Venue(db.Model):` and `__tablename__ = \"venues\"`?")
    app = t.probe(_slug_app, t.database_url(), *given)
    venues = t.probe(_schema, t.database_url(), "venues").get("venues", {"columns": {}})
    kind, nullable = venues["columns"].get("slug", [None, None])
    t.require(kind is not None, "a column `Venue.slug`",
              f"`venues` has the columns {', '.join(f'`{c}`' for c in venues['columns'])}",
              "Did you give `Venue` a column `slug: Mapped[str] = mapped_column(String(140), ...)`?")
    t.require(kind == "VARCHAR(140)", "`Venue.slug` is `String(140)`", f"it is `{kind}`",
              "Did you write `mapped_column(String(140), ...)`?")
    t.require(nullable is False, "`Venue.slug` is required (`NOT NULL`)", "it may be NULL",
              "Is it annotated `Mapped[str]` (not `Mapped[str | None]`)?")
    indexed = ["slug"] in [cols for _, cols, unique in venues["indexes"] if unique]
    t.require(["slug"] in [cols for _, cols in venues["unique"]], "`Venue.slug` is unique: a `UNIQUE` constraint, "
              "named `uq_venues_slug` by `db`'s naming convention", "a unique index, not a constraint" if indexed
              else "it is not", "Did you pass `unique=True` alone? With `index=True` too, SQLAlchemy makes a unique "
              "index `ix_venues_slug` instead, and the venue service, which answers 409 for the `uq_venues_…` "
              "constraints, would let PostgreSQL's report of a taken slug through as a 500." if indexed
              else "Did you pass `unique=True` to `mapped_column()`?")
    return names.Venue, app


@ex3.step("a new `Venue` gets the slug made from its name, unless it is given one")
def _slug_default(t, state):
    venue, app = state
    venue_names, custom = _venue_names(t), t.word("own-")
    rows = [{"name": n, "city": t.word().title(), "capacity": t.rng.randrange(50, 900)} for n in venue_names]
    rows.append({"name": t.word("Kept ").title(), "slug": custom, "city": t.word().title(), "capacity": 100})
    refused = t.probe(_save, app, venue, rows)
    t.require(not refused, f"venues named {show(venue_names)} saved, each with its slug",
              lambda: f"they were refused: `{refused.get('type')}: {refused.get('message')}`", "Does every venue "
              "created without a slug get one, `slugify(name)` of its own name (`default=_slug_from_name`)?")
    stored = dict(_rows(t, t.database_url(), "SELECT name, slug FROM venues")[0])
    for name in venue_names:
        t.require(stored.get(name) == slugify(name), f"the venue {name!r} gets the slug {slugify(name)!r}",
                  f"it got {show(stored.get(name))}", "Does the column's default return `slugify(name)` of the "
                  "venue's own name, `context.get_current_parameters()[\"name\"]`?")
    t.require(stored.get(rows[-1]["name"]) == custom, f"a venue created with `slug={custom!r}` keeps it",
              f"it has {show(stored.get(rows[-1]['name']))}",
              "Is the slug made only when none is given, as a column's `default=` is?")
    return app


@ex3.step("`POST /api/venues/` still works, and a second venue whose name gives a taken slug gets 409")
def _slug_api(t, app):
    client, name = t.client(app), f"...{t.word().title()}'s {t.word().upper()} {t.rng.randrange(1, 99)}!"
    body = {"name": name, "city": t.word().title(), "capacity": t.rng.randrange(50, 900)}
    t.json(client.post("/api/venues/", json=body), 201, "the new venue",
           "Does every new venue get a slug? `slug` is required, so inserting a venue without one fails "
           "unless the column's default fills it in.")
    stored = _rows(t, t.database_url(), ["SELECT slug FROM venues WHERE name = :name", {"name": name}])[0]
    t.require(stored == [(slugify(name),)], f"{name!r} is stored with the slug {slugify(name)!r}",
              f"it has {show(stored[0][0] if stored else None)}", "Does the default return `slugify(name)`?")
    twin = name.upper() + "!"
    t.json(client.post("/api/venues/", json={**body, "name": twin}), 409,
           f"a JSON error: {twin!r} gives the taken slug {slugify(name)!r}",
           "Is `slug` unique (`unique=True`)? Two venues must not share a URL.")


# --- exercise 4: the backfilling migration -------------------------------------------------------------

ex4 = chapter.exercise(
    "The backfilling migration 0002_venue_slug",
    hints=[
        "Three steps in `upgrade()`: `op.add_column(\"venues\", sa.Column(\"slug\", sa.String(length=140), "
        "nullable=True))`; then fill it in through `connection = op.get_bind()` and the given `venues` table, "
        "in id order, remembering the slugs given so far; then, in batch mode, `nullable=False` and the unique "
        "constraint. `downgrade()` undoes them in reverse.",
        "The backfill: `for venue_id, name in connection.execute(sa.select(venues.c.id, venues.c.name)"
        ".order_by(venues.c.id)).all():`, then `slug, number = slugify(name), 2` and `while slug in given: "
        "slug, number = f\"{slugify(name)}-{number}\", number + 1`, then `given.add(slug)` and "
        "`connection.execute(venues.update().where(venues.c.id == venue_id).values(slug=slug))`. "
        "The batch block: `with foreign_keys_off(), op.batch_alter_table(\"venues\") as batch_op:` with "
        "`batch_op.alter_column(\"slug\", existing_type=sa.String(length=140), nullable=False)` and "
        "`batch_op.create_unique_constraint(batch_op.f(\"uq_venues_slug\"), [\"slug\"])`.",
        "`downgrade()`: `with foreign_keys_off(), op.batch_alter_table(\"venues\") as batch_op:`, then "
        "`batch_op.drop_constraint(batch_op.f(\"uq_venues_slug\"), type_=\"unique\")` and "
        "`batch_op.drop_column(\"slug\")`.",
    ],
)
# the schema the chain must end at: chapter 03's tables, and venues.slug as tickethub/models.py has it
SCHEMA = {
    "venues.id INTEGER NOT NULL", "venues.name VARCHAR(120) NOT NULL", "venues.city VARCHAR(80) NOT NULL",
    "venues.capacity INTEGER NOT NULL", "venues.slug VARCHAR(140) NOT NULL", "venues UNIQUE uq_venues_name (name)",
    "venues UNIQUE uq_venues_slug (slug)", "events.id INTEGER NOT NULL", "events.name VARCHAR(200) NOT NULL",
    "events.capacity INTEGER NOT NULL", "events.seats_left INTEGER NOT NULL", "events.venue_id INTEGER",
    "events (venue_id) REFERENCES venues (id)", "bookings.id INTEGER NOT NULL", "bookings.event_id INTEGER NOT NULL",
    "bookings.email VARCHAR(254) NOT NULL", "bookings.seats INTEGER NOT NULL",
    "bookings UNIQUE uq_bookings_event_id_email (event_id, email)", "bookings (event_id) REFERENCES events (id)",
}
COLUMNS = {"venues": "id, name, city, capacity", "events": "id, name, capacity, seats_left, venue_id",
           "bookings": "id, event_id, email, seats"}
APP_IMPORT = re.compile(r"^[ \t]*(from[ \t]+(\.|tickethub\b|wsgi\b)\S*[ \t]+import|import[ \t]+(tickethub|wsgi)\b).*", re.M)


def _migration_names(t) -> list[str]:
    """Venue names in id order: exercise 3's, then names whose slugs clash, every time; the words are random."""
    w, v = t.word(), t.word().title()
    return [*_venue_names(t),
            f"The {w.title()} Mill", f"the {w} mill!", f"THE {w.upper()}  MILL",  # one slug, three venues: -2, -3
            f"The {w.title()} Mill 2",  # its own slug is the one the second venue got: the next free is -2-2
            f"Café {v}", f"Cafe {v}"]  # the same slug once the accent is off


def _facts(table: str, seen: dict) -> set[str]:
    """A table's schema as SQL-like sentences, so that two schemas compare as sets."""
    join = ", ".join
    return ({f"{table}.{name} {kind}{'' if nullable else ' NOT NULL'}" for name, (kind, nullable) in seen["columns"].items()}
            | {f"{table} UNIQUE {name} ({join(cols)})" for name, cols in seen["unique"]}
            | {f"{table} ({join(cols)}) REFERENCES {to} ({join(ref)})" for cols, to, ref in seen["foreign_keys"]}
            | {f"{table} {'UNIQUE ' * bool(unique)}INDEX {name} ({join(cols)})" for name, cols, unique in seen["indexes"]})


@ex4.step("`0002_venue_slug` follows `0001_initial`, is the only head, and imports nothing from `tickethub`")
def _revision(t, state):
    chain = t.probe(_chain, SLUG)
    t.require("refused" not in chain, f"the revision `{SLUG}` in `{SLUG_FILE}`",
              lambda: f"Alembic says: `{chain['refused']['message']}`",
              "Did you keep the given lines `revision = \"0002_venue_slug\"` and `down_revision = \"0001_initial\"`?")
    t.require(chain["found"] is True and chain["down"] == INITIAL and chain["heads"] == [SLUG],
              f"the chain `{INITIAL}` → `{SLUG}`, with `{SLUG}` as the only head",
              f"`{SLUG}` follows {show(chain['down'])}; the heads are {show(chain['heads'])}",
              "Did you keep `down_revision = \"0001_initial\"`? Is there another revision in `migrations/versions/`?")
    found = APP_IMPORT.search((t.project / SLUG_FILE).read_text(encoding="utf-8"))
    t.require(found is None, "a migration that brings everything it needs with it",
              lambda: f"`{SLUG_FILE}` has `{found[0].strip()}`",
              "A migration runs years later, with today's code: `Venue` will have columns this revision knows "
              "nothing about. Describe the table with the given `sa.table(\"venues\", ...)` and use `op.get_bind()`.")


def _kept(t, url: str, rows: dict, action: str) -> None:
    seen = dict(zip(COLUMNS, _rows(t, url, *(f"SELECT {c} FROM {table} ORDER BY id" for table, c in COLUMNS.items()))))
    for name, wanted in rows.items():
        t.require(seen[name] == wanted, f"after {action}, every row of `{name}` as it was",
                  f"{len(seen[name])} rows, {sum(1 for s in seen[name] if s not in wanted)} changed"
                  if len(seen[name]) == len(wanted) else f"{len(seen[name])} rows instead of {len(wanted)}",
                  "Does the migration change only `venues.slug`? Batch mode copies every row into the new table for you.")


@ex4.step("`upgrade` from `0001_initial` keeps every venue, event and booking")
def _slug_upgrade(t, state):
    url = t.database_url()  # `_alembic` makes a migration app of the check's for it: no learner's `db` involved
    _migrated(t, url, "upgrade", INITIAL)
    venues = [(i, name, t.word().title(), t.rng.randrange(50, 5000)) for i, name in enumerate(_migration_names(t), 1)]
    events = [(i, t.word("Gig ").title(), 200, 197, None if i == 1 else t.rng.randrange(1, len(venues) + 1))
              for i in range(1, t.rng.randrange(3, 7))]  # the first event has no venue
    bookings = [(i, i, f"{t.word()}@example.com", 3) for i in range(1, len(events) + 1)]
    rows = {"venues": venues, "events": events, "bookings": bookings}
    # venues stored newest first: a backfill that forgets `ORDER BY id` reads them in that order (on PostgreSQL)
    _rows(t, url, *(_insert(table, COLUMNS[table], rows[table][::-1] if table == "venues" else rows[table])
                    for table in COLUMNS))
    _migrated(t, url, "upgrade", "head", f"`upgrade head` on a database at `{INITIAL}` with venues in it")
    version = t.probe(_schema, url)["version"]
    t.require(version == [SLUG], f"`alembic_version` holds `{SLUG}`", f"it holds {show(version)}",
              "Does `upgrade()` finish without an error?")
    _kept(t, url, rows, f"`upgrade {SLUG}`")
    return url, rows


@ex4.step("every venue that existed gets `slugify(name)`, and clashing ones are numbered in id order")
def _backfilled(t, state):
    url, rows = state
    columns = t.probe(_schema, url, "venues")["venues"]["columns"]
    t.require("slug" in columns, "a column `venues.slug`", f"the columns {show(list(columns))}", "Does `upgrade()` call "
              "`op.add_column(\"venues\", sa.Column(\"slug\", sa.String(length=140), nullable=True))`?")
    seen = dict(_rows(t, url, "SELECT name, slug FROM venues")[0])
    names = [name for _, name, _, _ in rows["venues"]]
    for name, wanted in zip(names, unique_slugs(names)):
        if wanted == slugify(name):
            t.require(seen.get(name) == wanted, f"the venue {name!r} has the slug {wanted!r}",
                      f"it has {show(seen.get(name))}", "Do you update every venue, each with `slugify(name)` of its "
                      "own name, through `op.get_bind()`? Is it the first venue, in id order, with that slug?")
        else:
            t.require(seen.get(name) == wanted, f"the venue {name!r}, whose slug {slugify(name)!r} an earlier venue "
                      f"has, gets {wanted!r}", f"it has {show(seen.get(name))}", "Do you read the venues in id order "
                      "(`.order_by(venues.c.id)`), remember every slug given so far, and give a taken one the first "
                      "free number: `-2`, `-3`, ...?")
    return state


@ex4.step("`venues.slug` ends `NOT NULL` and unique, exactly as the model says (autogenerate finds nothing to add)")
def _constrained(t, state):
    url, rows = state
    kind, nullable = t.probe(_schema, url, "venues")["venues"]["columns"]["slug"]
    t.require(kind == "VARCHAR(140)", "`venues.slug` is `VARCHAR(140)`", f"it is `{kind}`",
              "Did you add it as `sa.String(length=140)`?")
    t.require(nullable is False, "`venues.slug` is `NOT NULL`", "it may be NULL", "Did you make it `nullable=False` "
              "after the backfill, with `batch_op.alter_column(\"slug\", ..., nullable=False)`?")
    taken = slugify(rows["venues"][0][1])
    twin = (len(rows["venues"]) + 1, t.word("Twin ").title(), taken, t.word().title(), 1)
    refused = t.probe(_sql, url, _insert("venues", "id, name, slug, city, capacity", [twin])).get("refused")
    t.require(refused and refused.get("kind") == "IntegrityError",
              f"the database refuses a second venue with the slug {taken!r}", "it stored both", "Did you add the "
              "unique constraint: `batch_op.create_unique_constraint(batch_op.f(\"uq_venues_slug\"), [\"slug\"])`?")
    seen = t.probe(_schema, url, "venues", "events", "bookings")
    found = set().union(*(_facts(table, seen[table]) for table in TABLES if table in seen))
    diffs = [f"the database has an extra table `{name}`" for name in seen["tables"] if name not in TABLES]
    diffs += [f"the database lacks `{fact}`" for fact in sorted(SCHEMA - found)]
    diffs += [f"the database has an extra `{fact}`" for fact in sorted(found - SCHEMA)]
    t.require(not diffs, "no difference between the database and the model", "; ".join(diffs[:3]),
              "Is the constraint named `uq_venues_slug` (`batch_op.f(\"uq_venues_slug\")`), on `slug` alone? "
              "Did the migration change anything else?")
    return state


@ex4.step("`downgrade 0001_initial` drops the column and its constraint, and keeps every venue")
def _slug_downgrade(t, state):
    url, rows = state
    _migrated(t, url, "downgrade", INITIAL)
    seen = t.probe(_schema, url, "venues")
    columns, uniques = list(seen["venues"]["columns"]), [name for name, _ in seen["venues"]["unique"]]
    t.require("slug" not in columns and uniques == ["uq_venues_name"] and seen["version"] == [INITIAL],
              f"`venues` as `{INITIAL}` made it: no `slug`, no `uq_venues_slug`, and `alembic_version` at `{INITIAL}`",
              f"the columns {show(columns)}, the unique constraints {show(uniques)}, "
              f"`alembic_version` {show(seen['version'])}", "Does `downgrade()` drop the constraint and then the "
              "column, in a batch block: `batch_op.drop_constraint(batch_op.f(\"uq_venues_slug\"), type_=\"unique\")`, "
              "`batch_op.drop_column(\"slug\")`?")
    _kept(t, url, rows, f"`downgrade {INITIAL}`")
    return state


@ex4.step("from an empty database (a fresh install, or CI), `upgrade head` builds the whole schema")
def _empty(t, state):
    url, rows = state  # the same database, emptied by 0001_initial's downgrade: cheaper, and just as empty
    _migrated(t, url, "downgrade", "base", "`downgrade base`")
    _tables_are(t, url, ["alembic_version"], [], "`downgrade base`")
    _migrated(t, url, "upgrade", "head", "`upgrade head` on an empty database")
    seen = t.probe(_schema, url, "venues")
    t.require(seen["version"] == [SLUG] and "slug" in seen.get("venues", {}).get("columns", {}),
              f"`alembic_version` at `{SLUG}`, and `venues.slug`", f"`alembic_version` {show(seen['version'])}",
              "Does `upgrade()` work when there are no venues at all?")


def _warm_batch():
    """What this chapter's migrations do (add a column, then change it in batch mode), on the warm-up's database."""
    op.add_column("venues", sa.Column("warm", sa.String(length=10), nullable=True))
    op.execute("UPDATE venues SET warm = 'warm'")
    with op.batch_alter_table("venues") as batch_op:
        batch_op.alter_column("warm", existing_type=sa.String(length=10), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_venues_warm"), ["warm"])
    with op.batch_alter_table("venues") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_venues_warm"), type_="unique")
        batch_op.drop_column("warm")


@chapter.warm_up
def _warm_up() -> None:
    """Run the given migrations once in the check server: each forked check skips Alembic's first-use costs.

    Only what the chapter gives (the exercises' starters, never their solutions), so a graded
    edition, which holds no solutions, warms up the same way.
    """
    files = workspace.files(chapter.name, "starter")
    # env.py without its fileConfig(): the server's logging stays as the other chapters' checks expect it
    files["migrations/env.py"] = files["migrations/env.py"].replace("fileConfig(config.config_file_name)", "")
    with tempfile.TemporaryDirectory(prefix="tickethub-warm-up-") as folder:
        workspace.write_files(Path(folder), {path: text for path, text in files.items() if path.startswith(MIGRATIONS)})
        url, directory = f"sqlite:///{Path(folder) / 'warm.sqlite'}", str(Path(folder) / MIGRATIONS)
        _alembic(url, "upgrade", INITIAL, directory)
        _sql(url, _insert("venues", "id, name, city, capacity", [(1, "Warm Hall", "Leeds", 10)]))
        _operations(_warm_batch, url)
        _alembic(url, "upgrade", "head", directory)
        _schema(url, "venues")
        _alembic(url, "downgrade", "base", directory)
        with _apps.pop(url).app_context() as context:
            context.app.extensions["sqlalchemy"].engine.dispose()
        _engines.pop(url).dispose()


setup, reset = chapter.setup, chapter.reset
