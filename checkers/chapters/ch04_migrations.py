"""Checks for chapter 04: migrations (Flask-Migrate wiring, batch mode, a model change, a data migration).

Migrations run through Alembic's own commands with the learner's `migrations/` folder (the check's
copy of the project is the current directory), always against a database private to the check:
`t.database_url()`, an SQLite file in the check's scratch folder or a PostgreSQL schema when
DATABASE_URL is set. The learner's own development database is never touched.
"""
from __future__ import annotations

import ast
import importlib.util
import io
import logging
import logging.config
import re
import shutil
import tempfile
from pathlib import Path

import flask_migrate
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import IntegrityError

from ..engine.checking import learner_frame, show, speed_up
from ..notebook.api import Chapter

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "Migrations", legacy=True)

MIGRATIONS = "migrations"
DB_FILE = "tickethub/db.py"
RENAME_FILE = "playground/rename_town.py"
MODELS_FILE = "tickethub/models.py"
SLUG_FILE = "migrations/versions/0002_venue_slug.py"
INITIAL, SLUG = "0001_initial", "0002_venue_slug"
TABLES = ["alembic_version", "bookings", "events", "venues"]


def slugify(name: str) -> str:
    """The slug rule the chapter teaches: lowercase, runs of anything but a-z and 0-9 become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _foreign_keys_on(dbapi_connection, record):
    # as tickethub/db.py does: SQLite enforces foreign keys only when each connection asks
    dbapi_connection.execute("PRAGMA foreign_keys = ON")


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__


def _where(t, error: BaseException) -> str:
    frame = learner_frame(error, t.project)
    return f", in `{frame.splitlines()[0]}`" if frame else ""


# --- running Alembic ---------------------------------------------------------------------------------


def _migration_app(t, url: str) -> Flask:
    """An app whose Flask-Migrate runs the project's `migrations/` on `url`, as `flask db` would.

    It has a `SQLAlchemy` of its own, not the learner's `db`: `env.py` needs only an engine to
    upgrade and downgrade, so a mistake in `tickethub/` cannot change what these steps see.
    """
    app = Flask("check")
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    database = SQLAlchemy()
    database.init_app(app)
    flask_migrate.Migrate(app, database, directory=MIGRATIONS, render_as_batch=True, compare_type=True)
    with app.app_context():
        engine = database.engine
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _foreign_keys_on)
        speed_up(engine)
    app.engine = engine
    return app


MIGRATION_HINTS = [
    ("FOREIGN KEY constraint failed",
     "SQLite refuses to drop `venues`, which batch mode rebuilds, while events refer to it. Is the batch "
     "block inside `foreign_keys_off()`: `with foreign_keys_off(), op.batch_alter_table(\"venues\") as batch_op:`?"),
    ("syntax error",
     "SQLite's `ALTER TABLE` cannot change a column or add a constraint. Did you make those changes "
     "inside `with op.batch_alter_table(\"venues\") as batch_op:`, through `batch_op`?"),
    ("null",
     "Did you add the column with `nullable=True` first, give every venue its slug, and only then make it "
     "`nullable=False` (in the batch block)?"),
    ("duplicate column",
     "Is the column added twice? Add it once with `op.add_column(...)`, then change it in the batch block."),
    ("unique",
     "Did two venues get the same slug? Each venue's slug must come from its own name: `slugify(name)`."),
    ("duplicate",
     "Did two venues get the same slug? Each venue's slug must come from its own name: `slugify(name)`."),
    ("a value is required for bind parameter",
     "Are there rows to update at all? With no venues, an `execute()` with an empty list of parameters fails: "
     "skip the backfill when there are no rows."),
    ("already exists",
     "Is something left over from before? Does `downgrade()` drop both the constraint and the column?"),
]


def _alembic(t, app: Flask, what: str, revision: str, *, action: str | None = None) -> None:
    """Run `alembic.command.<what>(revision)` for `app`; a database error fails the step with a hint."""
    action = action or f"`{what} {revision}`"
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config(MIGRATIONS)
        config.stdout = io.StringIO()  # `current` and friends print; nobody reads a check's output
        try:
            getattr(command, what)(config, revision)
        except CommandError as error:
            t.fail(f"{action} runs", f"Alembic says: `{_first_line(error)}`",
                   "Are the revision ids as given: `revision = \"0002_venue_slug\"`, "
                   "`down_revision = \"0001_initial\"`? Is `migrations/` complete (`env.py`, `alembic.ini`, "
                   "`script.py.mako` and `versions/0001_initial.py`, written by the notebook's cells)?")
        except NotImplementedError as error:
            t.fail(f"{action} runs on SQLite", f"`NotImplementedError: {_first_line(error)}`{_where(t, error)}",
                   "SQLite cannot add or drop a constraint with `ALTER TABLE`: did you do it inside "
                   "`with op.batch_alter_table(...) as batch_op:`, with `batch_op.create_unique_constraint(...)`?")
        except sa.exc.StatementError as error:  # the database's errors, and SQLAlchemy's about a statement
            text = _first_line(error)
            hint = next((h for pattern, h in MIGRATION_HINTS if pattern.lower() in text.lower()),
                        "Does the migration run on a database at `0001_initial` that has venues in it?")
            who = "the database refused it" if isinstance(error, sa.exc.DBAPIError) else "SQLAlchemy refused it"
            t.fail(f"{action} runs", f"{who}: `{type(error.orig or error).__name__}: {text}`{_where(t, error)}", hint)


def _version(app: Flask) -> list[str]:
    with app.engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return []
        return sorted(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _tables(engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(sa.inspect(connection).get_table_names())


# --- exercise 1: Flask-Migrate in db.py -------------------------------------------------------------

ex1 = chapter.exercise(
    "Wire Flask-Migrate into TicketHub",
    hints=[
        "Flask-Migrate follows the same pattern as Flask-SQLAlchemy: one object at module level, "
        "`migrate = Migrate(...)`, and `migrate.init_app(app, db)` inside `init_db(app)`, which the factory "
        "calls for every app it makes.",
        "`Migrate` takes its options as keywords: `Migrate(render_as_batch=True, compare_type=True)`. "
        "`init_app` needs the app *and* the database: without `db`, Alembic has no engine to migrate.",
        "`migrate = Migrate(render_as_batch=True, compare_type=True)` just below `db = SQLAlchemy(...)`, and "
        "`migrate.init_app(app, db)` right after `db.init_app(app)` in `init_db`.",
    ],
)


@ex1.step("`tickethub/db.py` defines `migrate`, a `flask_migrate.Migrate`")
def _migrate_object(t):
    database = t.module("tickethub.db")
    migrate = getattr(database, "migrate", None)
    t.require(isinstance(migrate, flask_migrate.Migrate), f"`migrate = Migrate(...)` in `{DB_FILE}`",
              f"`migrate` is {show(migrate)}", "Did you write `migrate = Migrate(render_as_batch=True, compare_type=True)`?")
    t.database, t.migrate = database, migrate


@ex1.step("`migrate` renders batch operations and compares types (`render_as_batch=True`, `compare_type=True`)")
def _migrate_options(t):
    options = t.migrate.alembic_ctx_kwargs
    for name in ("render_as_batch", "compare_type"):
        value = options.get(name)
        t.require(value is True, f"`{name}=True`", f"`{name}` is {show(value)}",
                  f"Did you pass `{name}=True` to `Migrate(...)`?")
    t.require(t.migrate.directory == MIGRATIONS, f"the migrations in `{MIGRATIONS}/`, Flask-Migrate's default",
              f"`directory` is {show(t.migrate.directory)}", "Did you pass a `directory=`? Leave it out: TicketHub's "
              "migrations are in `migrations/`, beside `tickethub/`.")


@ex1.step("every app from `create_app()` gets `migrate`, bound to `db`, with the `flask db` commands")
def _bound(t):
    t.url = t.database_url()
    app = t.module("tickethub").create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": t.url})
    bound = app.extensions.get("migrate")
    t.require(bound is not None and bound.migrate is t.migrate,
              "`app.extensions[\"migrate\"]`, set by `migrate.init_app(app, db)`",
              "the app has no Flask-Migrate" if bound is None else "it belongs to another `Migrate` object",
              "Do you call `migrate.init_app(app, db)` inside `init_db(app)`?")
    t.require(bound.db is t.database.db, "Flask-Migrate knows TicketHub's `db`", f"it has {show(bound.db)}",
              "Did you pass `db` too: `migrate.init_app(app, db)`? Without it Alembic has no engine.")
    commands = sorted(app.cli.commands)
    t.require("db" in commands and "init-db" in commands, "the commands `flask db` and `flask init-db`",
              f"the app's commands: {show(commands)}", "Did you keep `app.cli.add_command(init_db_command)`?")
    with app.app_context():
        engine = t.database.db.engine
    speed_up(engine)
    app.engine = engine
    t.app = app


@ex1.step("through your app, `upgrade 0001_initial` creates chapter 03's tables and `downgrade base` removes them")
def _upgrade(t):
    _alembic(t, t.app, "upgrade", INITIAL)
    seen = _tables(t.app.engine)
    t.require(seen == TABLES and _version(t.app) == [INITIAL],
              f"the tables {show(TABLES)}, and `alembic_version` holding `{INITIAL}`",
              f"the tables {show(seen)}, `alembic_version` {show(_version(t.app))}",
              "Is `migrations/versions/0001_initial.py` as the notebook's cell wrote it?")
    _alembic(t, t.app, "downgrade", "base")
    seen = _tables(t.app.engine)
    t.require(seen == ["alembic_version"] and _version(t.app) == [],
              "only an empty `alembic_version` left after `downgrade base`",
              f"the tables {show(seen)}, `alembic_version` {show(_version(t.app))}",
              "Is `migrations/versions/0001_initial.py` as the notebook's cell wrote it?")


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


def _halls_table(column: str, length: int) -> sa.Table:
    metadata = sa.MetaData(naming_convention={"pk": "pk_%(table_name)s"})
    return sa.Table("halls", metadata, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(80), nullable=False), sa.Column(column, sa.String(length)),
                    sa.UniqueConstraint("name", name="uq_halls_name"))


def _halls(t) -> list[tuple]:
    rows, names, count = [], set(), t.rng.randrange(4, 9)
    while len(rows) < count:
        name = f"{t.word().title()} Hall {t.rng.randrange(100)}"
        if name in names:
            continue
        names.add(name)
        town = None if len(rows) == 1 else " ".join(t.word().title() for _ in range(t.rng.randrange(1, 5)))
        rows.append((len(rows) + 1, name, town))
    return rows


def _rename_module(t):
    path = t.project / RENAME_FILE
    spec = importlib.util.spec_from_file_location("rename_town", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("upgrade", "downgrade"):
        t.require(callable(getattr(module, name, None)), f"a function `{name}()` in `{RENAME_FILE}`",
                  f"`{name}` is {show(getattr(module, name, None))}", f"Did you keep the line `def {name}():`?")
    return module


def _rename_databases(t) -> list[tuple[str, sa.Engine]]:
    """SQLite always (batch mode is for SQLite), and DATABASE_URL's database as well when it is another."""
    url = t.database_url()
    urls = [("SQLite", url)] if _is_sqlite(url) else [("SQLite", f"sqlite:///{t.project.parent / 'halls.sqlite'}"),
                                                      ("PostgreSQL", url)]
    engines = []
    for label, database in urls:
        engine = sa.create_engine(database)
        speed_up(engine)
        engines.append((label, engine))
    return engines


def _run_operations(t, engine, function, what: str, label: str) -> None:
    """Run a migration function with `op` bound to `engine`, as Alembic runs it."""
    try:
        with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
            function()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError, NotImplementedError) as error:
        t.fail(f"`{what}()` runs on {label}", f"`{type(getattr(error, 'orig', error)).__name__}: {_first_line(error)}`"
               f"{_where(t, error)}",
               "SQLite's `ALTER TABLE` cannot change a column's type. Did you make the change inside "
               "`with op.batch_alter_table(\"halls\") as batch_op:`, with `batch_op.alter_column(...)`?")


def _columns(engine, table: str) -> dict:
    with engine.connect() as connection:
        return {c["name"]: c for c in sa.inspect(connection).get_columns(table)}


def _unique_names(engine, table: str) -> list:
    with engine.connect() as connection:
        return sorted(str(u["name"]) for u in sa.inspect(connection).get_unique_constraints(table))


def _check_halls(t, engine, label: str, column: str, length: int, other: str, wanted: list[tuple], after: str) -> None:
    columns = _columns(engine, "halls")
    t.require(column in columns and other not in columns,
              f"after `{after}` on {label}, the column `halls.{column}` and no `halls.{other}`",
              f"the columns {show(list(columns))}",
              "Did you rename with `new_column_name=`?" if after == "upgrade()" else
              "Does `downgrade()` rename `city` back to `town`?")
    kind = columns[column]["type"]
    t.require(getattr(kind, "length", None) == length, f"`halls.{column}` is `String({length})` on {label}",
              f"it is `{kind!r}`", f"Did you pass `type_=sa.String(length={length})` to `alter_column`?")
    with engine.connect() as connection:
        seen = [tuple(row) for row in connection.execute(sa.text(f"SELECT id, name, {column} FROM halls ORDER BY id"))]
    lost = [f"{name!r}: {show(old)} became {show(new)}" for (_, name, old), (_, _, new) in zip(wanted, seen) if old != new]
    t.require(seen == wanted, f"every hall keeps its town, now in `{column}`, on {label}",
              "; ".join(lost[:3]) if lost else f"the rows {show(seen)}",
              "Did you drop one column and add another? That is what autogenerate writes for a rename, and it "
              "throws the data away. Rename it: `alter_column(\"town\", new_column_name=\"city\", ...)`.")
    uniques = _unique_names(engine, "halls")
    t.require("uq_halls_name" in uniques, f"the unique constraint `uq_halls_name` is still there on {label}",
              f"the unique constraints: {show(uniques)}",
              "Did you rebuild the table yourself? `op.batch_alter_table` copies the constraints for you.")


@ex2.step("`upgrade()` renames `halls.town` to `city` and widens it to `String(80)`, keeping every value (SQLite batch mode)")
def _rename_up(t):
    t.rename = _rename_module(t)
    t.halls, t.engines = _halls(t), _rename_databases(t)
    for label, engine in t.engines:
        with engine.begin() as connection:
            table = _halls_table("town", 40)
            table.metadata.drop_all(connection)
            table.metadata.create_all(connection)
            connection.execute(table.insert(), [{"id": i, "name": n, "town": c} for i, n, c in t.halls])
        _run_operations(t, engine, t.rename.upgrade, "upgrade", label)
        _check_halls(t, engine, label, "city", 80, "town", t.halls, "upgrade()")


@ex2.step("`downgrade()` gives back `halls.town`, `String(40)`, with every value")
def _rename_down(t):
    for label, engine in t.engines:
        _run_operations(t, engine, t.rename.downgrade, "downgrade", label)
        _check_halls(t, engine, label, "town", 40, "city", t.halls, "downgrade()")


# --- exercise 3: the slug in the model -----------------------------------------------------------------

ex3 = chapter.exercise(
    "The slug in the model",
    hints=[
        "A column default can be a function: SQLAlchemy calls it with a `context` for each row it inserts "
        "without a value. `context.get_current_parameters()` is a dict of that row's values, so "
        "`context.get_current_parameters()[\"name\"]` is the venue's name.",
        "`re.sub(r\"[^a-z0-9]+\", \"-\", name.lower())` turns each run of other characters into one hyphen; "
        "`.strip(\"-\")` removes the hyphens at the ends. The column: `slug: Mapped[str] = "
        "mapped_column(String(140), unique=True, default=_slug_from_name)`.",
        "`name = context.get_current_parameters()[\"name\"]` and `return re.sub(r\"[^a-z0-9]+\", \"-\", "
        "name.lower()).strip(\"-\")` in `_slug_from_name`; in `Venue`, below `name`: `slug: Mapped[str] = "
        "mapped_column(String(140), unique=True, default=_slug_from_name)`.",
    ],
)

PUNCTUATION = [" ", "  ", " & ", "'s ", ". ", " - ", "! ", ", ", "/", " + "]


def _venue_names(t, count: int) -> list[str]:
    names, slugs = [], set()
    while len(names) < count:
        parts = [t.word().title(), t.rng.choice(PUNCTUATION), t.word().upper(), t.rng.choice(PUNCTUATION),
                 str(t.rng.randrange(1, 999))]
        name = "".join(parts) + t.rng.choice(["", ".", "!", " (North)"])
        if slugify(name) not in slugs:
            slugs.add(slugify(name))
            names.append(name)
    return names


def _slug_column(t):
    models = t.module("tickethub.models")
    venue = getattr(models, "Venue", None)
    column = venue.__table__.c.get("slug") if hasattr(venue, "__table__") else None
    t.require(column is not None, "a column `Venue.slug`",
              f"`venues` has the columns {', '.join(f'`{c.name}`' for c in venue.__table__.c)}"
              if hasattr(venue, "__table__") else f"`Venue` is {show(venue)}",
              "Did you add `slug: Mapped[str] = mapped_column(String(140), unique=True, default=_slug_from_name)` to `Venue`?")
    return models, column


@ex3.step("`Venue.slug` is a `String(140)` column, required and unique")
def _slug_model(t):
    t.models, column = _slug_column(t)
    t.require(getattr(column.type, "length", None) == 140 and isinstance(column.type, sa.String),
              "`Venue.slug` is `String(140)`", f"it is `{column.type!r}`", "Did you write `mapped_column(String(140), ...)`?")
    t.require(column.nullable is False, "`Venue.slug` is required (`NOT NULL`)", "it may be NULL",
              "Is it annotated `Mapped[str]` (not `Mapped[str | None]`)?")
    unique = column.unique or any(
        isinstance(c, sa.UniqueConstraint) and [col.name for col in c.columns] == ["slug"] for c in column.table.constraints)
    t.require(unique, "`Venue.slug` is unique", "it is not", "Did you pass `unique=True` to `mapped_column()`?")


def _slug_app(t, *features: str) -> Flask:
    """An app on this check's own empty database, made from the learner's models by `create_all()`."""
    app = Flask("tickethub")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=t.database_url())
    database = t.module("tickethub.db")
    database.db.init_app(app)
    for feature in features:
        app.register_blueprint(t.module(f"tickethub.{feature}").bp, url_prefix=f"/api/{feature}")
    if features:
        t.module("tickethub.errors").register_error_handlers(app)
    with app.app_context():
        speed_up(database.db.engine)
        database.db.create_all()
    t.db = database.db
    return app


def _stored_slugs(t, app) -> dict:
    venues = t.models.Venue.__table__
    with app.app_context(), t.db.engine.connect() as connection:
        return dict(connection.execute(sa.select(venues.c.name, venues.c.slug)).all())


@ex3.step("a new `Venue` gets the slug made from its name (`default=_slug_from_name`)")
def _slug_default(t):
    app = _slug_app(t, "venues")
    Venue = t.models.Venue
    names = _venue_names(t, t.rng.randrange(3, 6))
    custom = t.word("own-")
    with app.app_context():
        t.db.session.add_all([Venue(name=n, city=t.word().title(), capacity=t.rng.randrange(50, 900)) for n in names])
        t.db.session.add(Venue(name=t.word("Kept ").title(), slug=custom, city=t.word().title(), capacity=100))
        try:
            t.db.session.commit()
        except IntegrityError as error:
            t.db.session.rollback()
            t.fail(f"venues named {show(names)} saved, each with its slug",
                   f"the database refused them: `{_first_line(error)}`",
                   "Does `Venue.slug` have `default=_slug_from_name`, and does `_slug_from_name` return each venue's own slug?")
    stored = _stored_slugs(t, app)
    for name in names:
        t.require(stored.get(name) == slugify(name), f"the venue {name!r} gets the slug {slugify(name)!r}",
                  f"it got {show(stored.get(name))}",
                  "Lowercase first, then turn every run of characters other than a-z and 0-9 into one hyphen "
                  "(`re.sub(r\"[^a-z0-9]+\", \"-\", ...)`), then strip the hyphens at the ends. Is that your order?")
    t.require(custom in stored.values(), f"a venue created with `slug={custom!r}` keeps it",
              f"the slugs stored: {show(sorted(stored.values()))}",
              "Is the function the column's `default=`, used only when no slug is given?")
    t.app = app


@ex3.step("`POST /api/venues/` still works, and a second venue whose name gives a taken slug gets 409")
def _slug_api(t):
    client = t.app.test_client()
    name = _venue_names(t, 1)[0]
    body = {"name": name, "city": t.word().title(), "capacity": t.rng.randrange(50, 900)}
    t.json(client.post("/api/venues/", json=body), 201, "the new venue",
           "Does every new venue get a slug? `slug` is required, so inserting a venue without one fails "
           "unless the column's `default=_slug_from_name` fills it in.")
    t.require(_stored_slugs(t, t.app).get(name) == slugify(name), f"{name!r} is stored with the slug {slugify(name)!r}",
              f"it has {show(_stored_slugs(t, t.app).get(name))}", "Does `_slug_from_name` return the slug?")
    twin = name.upper() + "!"
    response = client.post("/api/venues/", json={**body, "name": twin})
    t.json(response, 409, f"a JSON error: {twin!r} gives the taken slug {slugify(name)!r}",
           "Is `slug` unique (`unique=True`)? Two venues must not share a URL.")


# --- exercise 4: the backfilling migration -------------------------------------------------------------

ex4 = chapter.exercise(
    "The backfilling migration 0002_venue_slug",
    hints=[
        "Three steps in `upgrade()`: `op.add_column(\"venues\", sa.Column(\"slug\", sa.String(length=140), "
        "nullable=True))`; then fill it in through `connection = op.get_bind()` and the given `venues` table; "
        "then, in batch mode, `nullable=False` and the unique constraint. `downgrade()` undoes them in reverse.",
        "The backfill: `for venue_id, name in connection.execute(sa.select(venues.c.id, venues.c.name)).all():` "
        "and `connection.execute(venues.update().where(venues.c.id == venue_id).values(slug=slugify(name)))`. "
        "The batch block: `with foreign_keys_off(), op.batch_alter_table(\"venues\") as batch_op:` with "
        "`batch_op.alter_column(\"slug\", existing_type=sa.String(length=140), nullable=False)` and "
        "`batch_op.create_unique_constraint(batch_op.f(\"uq_venues_slug\"), [\"slug\"])`.",
        "`downgrade()`: `with foreign_keys_off(), op.batch_alter_table(\"venues\") as batch_op:`, then "
        "`batch_op.drop_constraint(batch_op.f(\"uq_venues_slug\"), type_=\"unique\")` and "
        "`batch_op.drop_column(\"slug\")`.",
    ],
)

# the schema the chain must end at: chapter 03's tables, and venues.slug (what tickethub/models.py says)
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _schema(slug: bool) -> sa.MetaData:
    metadata = sa.MetaData(naming_convention=NAMING)
    sa.Table("venues", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(120), nullable=False, unique=True),
             *([sa.Column("slug", sa.String(140), nullable=False, unique=True)] if slug else []),
             sa.Column("city", sa.String(80), nullable=False), sa.Column("capacity", sa.Integer, nullable=False))
    sa.Table("events", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(200), nullable=False), sa.Column("capacity", sa.Integer, nullable=False),
             sa.Column("seats_left", sa.Integer, nullable=False),
             sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id"), nullable=True),
             sa.CheckConstraint("seats_left >= 0", name="seats_left_not_negative"))
    sa.Table("bookings", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
             sa.Column("email", sa.String(254), nullable=False), sa.Column("seats", sa.Integer, nullable=False),
             sa.UniqueConstraint("event_id", "email"))
    return metadata


BEFORE, AFTER = _schema(slug=False), _schema(slug=True)


def _imports_the_app(tree) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").split(".")[0] == "tickethub"):
            return f"from {'.' * node.level}{node.module or ''} import ..."
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("tickethub", "wsgi"):
                    return f"import {alias.name}"
    return None


@ex4.step("`0002_venue_slug` follows `0001_initial`, is the only head, and imports nothing from `tickethub`")
def _revision(t):
    source = (t.project / SLUG_FILE).read_text(encoding="utf-8")
    try:
        scripts = ScriptDirectory(str(t.project / MIGRATIONS))
        script = scripts.get_revision(SLUG)
        heads = scripts.get_heads()
    except CommandError as error:
        t.fail(f"the revision `{SLUG}` in `{SLUG_FILE}`", f"Alembic says: `{_first_line(error)}`",
               "Did you keep the given lines `revision = \"0002_venue_slug\"` and `down_revision = \"0001_initial\"`?")
    t.require(script is not None and script.down_revision == INITIAL and list(heads) == [SLUG],
              f"the chain `{INITIAL}` → `{SLUG}`, with `{SLUG}` as the only head",
              f"`{SLUG}` follows {show(getattr(script, 'down_revision', None))}; the heads are {show(list(heads))}",
              "Did you keep `down_revision = \"0001_initial\"`? Is there another revision in `migrations/versions/`?")
    found = _imports_the_app(ast.parse(source))
    t.require(found is None, "a migration that brings everything it needs with it",
              f"`{SLUG_FILE}` has `{found}`",
              "A migration runs years later, with today's code: `Venue` will have columns this revision knows "
              "nothing about. Describe the table with the given `sa.table(\"venues\", ...)` and use `op.get_bind()`.")


def _fill(t, app) -> dict:
    """Put random venues, events and bookings into a database at 0001_initial; return them as rows."""
    venues, events, bookings = (BEFORE.tables[n] for n in ("venues", "events", "bookings"))
    names = _venue_names(t, t.rng.randrange(3, 8))
    rows = {"venues": [], "events": [], "bookings": []}
    for i, name in enumerate(names, 1):
        rows["venues"].append({"id": i, "name": name, "city": t.word().title(), "capacity": t.rng.randrange(50, 5000)})
    for i in range(1, t.rng.randrange(3, 7)):
        capacity = t.rng.randrange(20, 300)
        venue = None if i == 1 else t.rng.randrange(1, len(names) + 1)
        rows["events"].append({"id": i, "name": t.word("Gig ").title(), "capacity": capacity,
                               "seats_left": capacity - 3, "venue_id": venue})
    for i, event in enumerate(rows["events"], 1):
        rows["bookings"].append({"id": i, "event_id": event["id"], "email": f"{t.word()}@example.com", "seats": 3})
    with app.engine.begin() as connection:
        for table in (venues, events, bookings):
            connection.execute(table.insert(), rows[table.name])
    return rows


def _read(app, table: sa.Table) -> list[dict]:
    with app.engine.connect() as connection:
        return [row._asdict() for row in connection.execute(sa.select(table).order_by(table.c.id))]


def _kept(t, app, rows: dict, action: str) -> None:
    for name in ("venues", "events", "bookings"):
        seen = _read(app, BEFORE.tables[name])
        t.require(seen == rows[name], f"after {action}, every row of `{name}` as it was",
                  f"{len(seen)} rows, {sum(1 for s in seen if s not in rows[name])} changed"
                  if len(seen) == len(rows[name]) else f"{len(seen)} rows instead of {len(rows[name])}",
                  "Does the migration change only `venues.slug`? Batch mode copies every row into the new table for you.")


@ex4.step("`upgrade` from `0001_initial` keeps every venue, event and booking")
def _slug_upgrade(t):
    t.app = _migration_app(t, t.database_url())
    _alembic(t, t.app, "upgrade", INITIAL)
    t.rows = _fill(t, t.app)
    _alembic(t, t.app, "upgrade", "head", action=f"`upgrade head` on a database at `{INITIAL}` with venues in it")
    version = _version(t.app)
    t.require(version == [SLUG], f"`alembic_version` holds `{SLUG}`", f"it holds {show(version)}",
              "Does `upgrade()` finish without an error?")
    _kept(t, t.app, t.rows, f"`upgrade {SLUG}`")


@ex4.step("every venue that existed gets the slug made from its name")
def _backfilled(t):
    columns = _columns(t.app.engine, "venues")
    t.require("slug" in columns, "a column `venues.slug`", f"the columns {show(list(columns))}",
              "Does `upgrade()` call `op.add_column(\"venues\", sa.Column(\"slug\", sa.String(length=140), nullable=True))`?")
    with t.app.engine.connect() as connection:
        seen = dict(connection.execute(sa.text("SELECT name, slug FROM venues")).all())
    for venue in t.rows["venues"]:
        name = venue["name"]
        t.require(seen.get(name) == slugify(name), f"the venue {name!r} has the slug {slugify(name)!r}",
                  f"it has {show(seen.get(name))}",
                  "Do you update every venue, each with `slugify(name)` of its own name, through `op.get_bind()`?")


@ex4.step("`venues.slug` ends `NOT NULL` and unique, exactly as the model says (autogenerate finds nothing to add)")
def _constrained(t):
    column = _columns(t.app.engine, "venues")["slug"]
    t.require(getattr(column["type"], "length", None) == 140, "`venues.slug` is `VARCHAR(140)`",
              f"it is `{column['type']!r}`", "Did you add it as `sa.String(length=140)`?")
    t.require(column["nullable"] is False, "`venues.slug` is `NOT NULL`", "it may be NULL",
              "Did you make it `nullable=False` after the backfill, with `batch_op.alter_column(\"slug\", ..., nullable=False)`?")
    taken = t.rows["venues"][0]["name"]
    try:
        with t.app.engine.begin() as connection:
            connection.execute(AFTER.tables["venues"].insert().values(  # an id of its own: the rows came with theirs
                id=len(t.rows["venues"]) + 1, name=t.word("Twin ").title(), slug=slugify(taken), city=t.word().title(),
                capacity=1))
        refused = False
    except IntegrityError:
        refused = True
    t.require(refused, f"the database refuses a second venue with the slug {slugify(taken)!r}",
              "it stored both", "Did you add the unique constraint: `batch_op.create_unique_constraint(batch_op.f(\"uq_venues_slug\"), [\"slug\"])`?")
    with t.app.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, AFTER)
    t.require(not diffs, "no difference between the database and the model",
              "; ".join(_describe(d) for d in diffs[:3]),
              "Is the constraint named `uq_venues_slug` (`batch_op.f(\"uq_venues_slug\")`), on `slug` alone? "
              "Did the migration change anything else?")


def _describe(diff) -> str:
    """One of compare_metadata's differences, in words."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        diff = diff[0]
    kind, *rest = diff
    if kind in ("add_constraint", "remove_constraint", "add_index", "remove_index"):
        what = rest[0]
        columns = ", ".join(c.name for c in getattr(what, "columns", []))
        verb = "the database lacks" if kind.startswith("add") else "the database has an extra"
        return f"{verb} `{type(what).__name__}` `{what.name}` on ({columns})"
    if kind in ("add_column", "remove_column"):
        verb = "the database lacks" if kind == "add_column" else "the database has an extra"
        return f"{verb} column `{rest[1]}.{rest[2].name}`"
    if kind.startswith("modify_"):
        return f"`{rest[1]}.{rest[2]}` differs ({kind.removeprefix('modify_')}: {show(rest[-2])} in the database, {show(rest[-1])} in the model)"
    return f"`{kind}` on `{rest[1] if len(rest) > 1 else rest}`"


@ex4.step("`downgrade 0001_initial` drops the column and its constraint, and keeps every venue")
def _slug_downgrade(t):
    _alembic(t, t.app, "downgrade", INITIAL)
    columns = list(_columns(t.app.engine, "venues"))
    uniques = _unique_names(t.app.engine, "venues")
    t.require("slug" not in columns and uniques == ["uq_venues_name"] and _version(t.app) == [INITIAL],
              f"`venues` as `{INITIAL}` made it: no `slug`, no `uq_venues_slug`, and `alembic_version` at `{INITIAL}`",
              f"the columns {show(columns)}, the unique constraints {show(uniques)}, `alembic_version` {show(_version(t.app))}",
              "Does `downgrade()` drop the constraint and then the column, in a batch block: "
              "`batch_op.drop_constraint(batch_op.f(\"uq_venues_slug\"), type_=\"unique\")`, `batch_op.drop_column(\"slug\")`?")
    _kept(t, t.app, t.rows, f"`downgrade {INITIAL}`")


@ex4.step("from an empty database (a fresh install, or CI), `upgrade head` builds the whole schema")
def _empty(t):
    # the same database, emptied by 0001_initial's downgrade: cheaper than a new one, and just as empty
    _alembic(t, t.app, "downgrade", "base", action="`downgrade base`")
    seen = _tables(t.app.engine)
    t.require(seen == ["alembic_version"], "no tables but `alembic_version` after `downgrade base`",
              f"the tables {show(seen)}", "Is `migrations/versions/0001_initial.py` as the notebook's cell wrote it?")
    _alembic(t, t.app, "upgrade", "head", action="`upgrade head` on an empty database")
    t.require(_version(t.app) == [SLUG] and "slug" in _columns(t.app.engine, "venues"),
              f"`alembic_version` at `{SLUG}`, and `venues.slug`",
              f"`alembic_version` {show(_version(t.app))}", "Does `upgrade()` work when there are no venues at all?")


# --- warming up the check server ----------------------------------------------------------------------

WARM_REVISION = '''
from alembic import op
import sqlalchemy as sa

revision = "w1"
down_revision = None


def upgrade():
    op.create_table("w", sa.Column("id", sa.Integer, primary_key=True), sa.Column("a", sa.String(10)))
    op.add_column("w", sa.Column("b", sa.String(10), nullable=True))
    op.get_bind().execute(sa.table("w", sa.column("b")).update().values(b="x"))
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys = OFF")
    with op.batch_alter_table("w") as batch_op:
        batch_op.alter_column("b", existing_type=sa.String(10), nullable=False)
        batch_op.create_unique_constraint("uq_w_b", ["b"])
        batch_op.alter_column("a", new_column_name="c", type_=sa.String(20))


def downgrade():
    with op.batch_alter_table("w") as batch_op:
        batch_op.drop_constraint("uq_w_b", type_="unique")
        batch_op.drop_column("b")
    op.drop_table("w")
'''


@chapter.warm_up
def _warm_up() -> None:
    """Run Alembic once in the check server, so each forked check skips its imports and first-use costs."""
    saved = _logging_state()
    template = Path(flask_migrate.__file__).parent / "templates" / "flask"
    try:
        with tempfile.TemporaryDirectory(prefix="tickethub-warm-up-") as folder:
            migrations = Path(folder) / "migrations"
            (migrations / "versions").mkdir(parents=True)
            shutil.copy(template / "env.py", migrations / "env.py")
            shutil.copy(template / "alembic.ini.mako", migrations / "alembic.ini")
            (migrations / "versions" / "w1.py").write_text(WARM_REVISION)
            app = Flask("warm-up")
            app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
            database = SQLAlchemy(metadata=_schema(slug=True))
            database.init_app(app)
            flask_migrate.Migrate(app, database, directory=str(migrations))
            with app.app_context():
                config = app.extensions["migrate"].migrate.get_config(str(migrations))
                config.stdout = io.StringIO()
                command.upgrade(config, "head")
                command.current(config)
                with database.engine.connect() as connection:
                    compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), database.metadata)
                    sa.inspect(connection).get_unique_constraints("w")
                command.downgrade(config, "base")
                database.engine.dispose()
    finally:
        _restore_logging(saved)


def _logging_state():
    loggers = {name: (lg.disabled, lg.level, list(lg.handlers), lg.propagate)
               for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    return list(logging.root.handlers), logging.root.level, loggers


def _restore_logging(saved) -> None:
    """Undo env.py's `fileConfig()`: other chapters' checks must find logging as it was."""
    handlers, level, loggers = saved
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            disabled, lvl, hs, propagate = loggers.get(name, (False, logging.NOTSET, [], True))
            logger.disabled, logger.level, logger.handlers[:], logger.propagate = disabled, lvl, hs, propagate


setup, reset = chapter.setup, chapter.reset
