"""The helpers of chapter 04's demos (Migrations): they run in the notebook's kernel, and check nothing.

`run()` calls a Flask-Migrate function the way `flask db ...` runs it and prints what it says, so
that the output reads the same on every run and every database. The playground is a tiny app of
its own (one table, `halls`) whose migrations live in `playground/migrations/` and whose database
is the throwaway `instance/playground.sqlite`. The TicketHub helpers work on the development
database the learner's app uses (they empty it: development data only).
"""
from __future__ import annotations

import contextlib
import difflib
import io
import logging
import os
import re
import shutil
import warnings
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate, migrate, upgrade
from flask_sqlalchemy import SQLAlchemy

PLAYGROUND = Path("playground/migrations")
NAMES = {"pk": "pk_%(table_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s"}  # as in tickethub/db.py
HALLS = [{"name": "Riverside Hall", "town": "Leeds"}, {"name": "The Old Mill", "town": "Bristol"},
         {"name": "Corn Exchange", "town": None}]
# venues as a database in use has them: two names that give the same slug, accents, no Latin letter at all
VENUES = [("Riverside Hall", "Leeds", 800), ("The Old Mill", "Bristol", 250), ("St. Luke's & Co.", "London", 120),
          ("the old mill!", "Bath", 90), ("Café Müller", "Wuppertal", 300), ("東京ドーム", "Tokyo", 5000)]
# Alembic's notes on its own set-up: the dialect and plugins it loads, what the dialect makes of the tables
SET_UP = re.compile(r"INFO  \[alembic\.(runtime\.migration\] (Context impl|Will assume)|runtime\.plugins\]|ddl\.)")


def run(app: Flask, command, **options) -> None:
    """Run a Flask-Migrate command in `app`'s context, like `flask db ...`, and print what it says.

    Warnings are printed too, without the file they come from. Left out: memory addresses
    (` object at 0x...`), which change at every run, and Alembic's notes on its own set-up.
    """
    said = io.StringIO()
    try:
        with app.app_context(), contextlib.redirect_stdout(said), contextlib.redirect_stderr(said), \
                warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            # an earlier cell's app, collected now, may warn about its unclosed connection: not this command's
            warnings.simplefilter("ignore", ResourceWarning)
            logging.basicConfig(stream=said, format="%(levelname)-5.5s [%(name)s] %(message)s", force=True)
            command(**options)
    except SystemExit:  # a command that fails logs why, then exits, as `flask db ...` does
        pass
    finally:
        for line in said.getvalue().replace(os.getcwd() + os.sep, "").splitlines():
            if not SET_UP.match(line):
                print(re.sub(r" object at 0x[0-9a-fA-F]+", "", line))
        for warning in warned:
            print(f"{warning.category.__name__}: {warning.message}")


def playground(*columns: sa.Column, naming_convention: dict = NAMES, **options) -> Flask:
    """A new app whose models are one table, `halls`: an id, a unique name, and `columns`.

    Its database is instance/playground.sqlite; `options` go to `Migrate` (and on to Alembic).
    """
    metadata = sa.MetaData(naming_convention=naming_convention)
    sa.Table("halls", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(80), nullable=False), *columns,
             sa.UniqueConstraint("name", name="uq_halls_name"))
    app = Flask("playground", root_path=os.getcwd())
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///playground.sqlite"  # in the instance folder
    play_db = SQLAlchemy(metadata=metadata)
    play_db.init_app(app)
    Migrate(app, play_db, directory=str(PLAYGROUND), **options)
    return app


def clear_playground() -> None:
    """Remove the playground's migrations, its drafts and its database, so that a demo can run again."""
    shutil.rmtree(PLAYGROUND, ignore_errors=True)
    shutil.rmtree("playground/draft", ignore_errors=True)
    Path("instance/playground.sqlite").unlink(missing_ok=True)


def back_to_start(app: Flask) -> None:
    """Put the playground back at its revision 0001, with three halls: drafts gone, a new database."""
    for draft in PLAYGROUND.glob("versions/*"):
        if not draft.name.startswith("0001_"):
            shutil.rmtree(draft) if draft.is_dir() else draft.unlink()
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()  # let go of the old file before deleting it
    Path("instance/playground.sqlite").unlink(missing_ok=True)
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):  # upgrade quietly
        upgrade(directory=str(PLAYGROUND), revision="0001")
        with app.extensions["sqlalchemy"].engine.begin() as connection:
            connection.execute(sa.table("halls", sa.column("name"), sa.column("town")).insert(), HALLS)


def autogenerate(app: Flask, message: str) -> None:
    """Autogenerate the playground's next revision, 0002; print its upgrade() and downgrade()."""
    run(app, migrate, directory=str(PLAYGROUND), message=message, rev_id="0002")
    for script in PLAYGROUND.glob("versions/0002_*.py"):
        text = script.read_text(encoding="utf-8")
        print(text[text.index("def upgrade"):].strip())


def compare_folders(made: Path, ours: Path, names: tuple[str, ...]) -> None:
    """Say which files of `ours` are exactly those of `made`; print how the others differ."""
    for name in names:
        old, new = (made / name).read_text(encoding="utf-8"), (ours / name).read_text(encoding="utf-8")
        if old == new:
            print(f"{(ours / name).as_posix()}: as `init` writes it")
            continue
        print(f"{(ours / name).as_posix()}: changed")
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), f"init's {name}", f"TicketHub's {name}", lineterm="")
        print("\n".join(line for line in diff if not line.startswith("@@")))


def rows(app: Flask, table: str = "halls") -> list[dict]:
    """Every row of a table of `app`'s database, in id order, as dicts."""
    with app.app_context(), app.extensions["sqlalchemy"].engine.connect() as connection:
        return [row._asdict() for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]


def tables(app: Flask) -> list[str]:
    """The names of the tables in `app`'s database."""
    with app.app_context():
        return sorted(sa.inspect(app.extensions["sqlalchemy"].engine).get_table_names())


def empty_database(app: Flask) -> None:
    """Drop every table of `app`'s database, alembic_version included. Development data only!"""
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
        everything = sa.MetaData()
        everything.reflect(engine)
        everything.drop_all(engine)


def add_venues(app: Flask) -> None:
    """Put `VENUES` and an event into the database as plain rows, as a database in use has them."""
    venues = sa.table("venues", sa.column("name"), sa.column("city"), sa.column("capacity"))
    events = sa.table("events", sa.column("name"), sa.column("capacity"), sa.column("seats_left"), sa.column("venue_id"))
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as connection:
        connection.execute(venues.insert(), [{"name": n, "city": c, "capacity": k} for n, c, k in VENUES])
        connection.execute(events.insert(), [{"name": "Jazz Night", "capacity": 120, "seats_left": 120, "venue_id": 1}])
