"""The machine's PostgreSQL, for the tests that run the data chapters on it.

The server is found at POSTGRES_TEST_URL (default: postgresql://postgres@127.0.0.1:5432/postgres,
a role that may create databases). When it cannot be reached the tests skip, except in CI
(the CI variable is set), where the PostgreSQL run is mandatory and they fail instead.
"""
from __future__ import annotations

import contextlib
import os
import secrets

import pytest
import sqlalchemy as sa

ADMIN_URL = os.environ.get("POSTGRES_TEST_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must run the PostgreSQL tests, but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL is not available ({reason}); set POSTGRES_TEST_URL to run these tests")


def admin_engine() -> sa.Engine:
    """An engine on the server's admin database, or skip (fail in CI) when there is none."""
    engine = sa.create_engine(ADMIN_URL, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 — any failure means: no usable server
        engine.dispose()
        _unavailable(f"{ADMIN_URL} cannot be reached: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    return engine


def drop_check_schemas(url: str) -> list[str]:
    """Drop the `check_…` schemas that checks killed before their cleanup left behind."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            names = connection.execute(sa.text(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'check\\_%' ORDER BY nspname")).scalars().all()
            for name in names:
                connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        engine.dispose()
    return names


@contextlib.contextmanager
def fresh_database():
    """Create a database `tickethub_test_<hex>`, yield its URL, and drop it (and what is in it) after."""
    admin = admin_engine()
    name = f"tickethub_test_{secrets.token_hex(5)}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001
        admin.dispose()
        _unavailable(f"the database {name} cannot be created: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            drop_check_schemas(url)
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def with_schema(url: str, schema: str) -> str:
    """Create `schema` in the database at `url`; return a URL whose connections work in it."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
    return sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


def schemas(url: str, pattern: str = "check\\_%") -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p ORDER BY 1"),
                                      {"p": pattern}).scalars().all()
    finally:
        engine.dispose()
