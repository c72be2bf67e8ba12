"""Databases for checks: a fresh, empty one per check, SQLite by default or a PostgreSQL schema."""
from __future__ import annotations

import itertools
import os
import re
import secrets
from pathlib import Path

_cleanups: list = []  # run when the check ends (run_in_this_process), even after a failure
_sqlite_files = itertools.count(1)


def fresh_database(scratch: Path) -> str:
    """Return the URL of a new, empty database: a schema of DATABASE_URL's PostgreSQL, or SQLite."""
    server = os.environ.get("DATABASE_URL", "")
    if server.startswith(("postgresql", "postgres:")):
        return _postgres_schema(server)
    n = next(_sqlite_files)
    return f"sqlite:///{scratch / ('check.sqlite' if n == 1 else f'check-{n}.sqlite')}"


def _postgres_schema(server: str) -> str:
    """Create a schema `check_<hex>` and return a URL whose connections work in it."""
    import sqlalchemy as sa

    if server.startswith("postgres://"):
        server = "postgresql://" + server.removeprefix("postgres://")
    url = sa.engine.make_url(server)
    schema = f"check_{secrets.token_hex(6)}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    _cleanups.append(lambda: _drop_schema(url, schema))
    options = url.query.get("options")
    # keep the URL's other options, but not a search_path of its own
    options = re.sub(r"-c\s*search_path=\S+\s*", "", options).strip() + " " if isinstance(options, str) else ""
    # the schema's name also names the connections, so that cleaning up can find them
    private = url.update_query_dict({"options": f"{options.lstrip()}-csearch_path={schema}", "application_name": schema})
    return private.render_as_string(hide_password=False)


def _drop_schema(url, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            # the learner's connections may still hold locks (an open transaction): end them first
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"),
                {"name": schema},
            )
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


def speed_up(engine) -> None:
    """A check's SQLite file is thrown away: skip the disk flushes that make each commit slow."""
    if engine.dialect.name == "sqlite":
        import sqlalchemy as sa

        sa.event.listen(engine, "connect", _no_sync)


def _no_sync(dbapi_connection, record):
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def clean_up() -> None:
    """Run (and forget) the cleanups registered by this check; a cleanup's error is ignored."""
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception:  # noqa: BLE001 — a leftover schema is dropped by the tests' fixture
            pass


