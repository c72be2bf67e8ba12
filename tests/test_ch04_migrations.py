"""Do chapter 04's checks accept right answers and reject wrong ones?"""
import importlib

import pytest

from checkers.engine import workspace
from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "04-migrations"
DB = "tickethub/db.py"
RENAME = "playground/rename_town.py"
MODELS = "tickethub/models.py"
SLUG = "migrations/versions/0002_venue_slug.py"

NOT_NULL_AT_ONCE = (  # what autogenerate writes: a NOT NULL column on a table with rows
    '''    op.add_column("venues", sa.Column("slug", sa.String(length=140), nullable=True))''',
    '''    op.add_column("venues", sa.Column("slug", sa.String(length=140), nullable=False))''',
)
NO_UNIQUE = ('        batch_op.create_unique_constraint(batch_op.f("uq_venues_slug"), ["slug"])\n', "")
NO_DOWNGRADE = (
    '''        batch_op.drop_constraint(batch_op.f("uq_venues_slug"), type_="unique")
        batch_op.drop_column("slug")''',
    "        pass",
)

# found on PostgreSQL, where each must fail as on SQLite: (exercise, path, old, new, expected fragment)
POSTGRES_WRONG_ANSWERS = [
    ("ex1", DB, "    migrate.init_app(app, db)\n", "    migrate.init_app(app)\n", "Did you pass `db` too"),
    ("ex2", RENAME, 'type_=sa.String(length=80), existing_nullable=True)',
     'type_=sa.String(length=40), existing_nullable=True)', "`halls.city` is `String(80)`"),
    ("ex3", MODELS, "String(140), unique=True, default=_slug_from_name", "String(140), default=_slug_from_name",
     "`Venue.slug` is unique"),
    ("ex4", SLUG, *NOT_NULL_AT_ONCE, "nullable=True"),
    ("ex4", SLUG, *NO_UNIQUE, "the database refuses a second venue"),
    ("ex4", SLUG, *NO_DOWNGRADE, "Does `downgrade()` drop the constraint"),
]


@pytest.mark.backends("postgresql")  # the cases found there; every other test runs there too
@pytest.mark.parametrize(("exercise", "path", "old", "new", "expected"), POSTGRES_WRONG_ANSWERS)
def test_wrong_answers_found_on_postgres_fail(project, exercise, path, old, new, expected):
    assert_rejected(project(CHAPTER).edit(path, old, new).check(exercise), expected)


def test_starters_import_and_the_factory_works(learner_package):
    """Does the learner's project, before any exercise is solved, import and build an app?"""
    tickethub = learner_package(CHAPTER)
    assert "init-db" in tickethub.create_app({"TESTING": True}).cli.commands
    importlib.import_module("tickethub.models")


# --- exercise 1: Flask-Migrate in db.py ------------------------------------------------------------


def test_migrate_alternative_passes(project):
    """Are options in another order, and the folder named at `init_app`, accepted?"""
    p = project(CHAPTER).edit(DB, "migrate = Migrate(render_as_batch=True, compare_type=True)",
                              'migrate = Migrate(compare_type=True, render_as_batch=True, command="db")')
    p.edit(DB, "    migrate.init_app(app, db)\n", '    migrate.init_app(app, db=db, directory="migrations")\n')
    assert_outcome(p.check("ex1"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("render_as_batch=True, compare_type=True", "render_as_batch=False, compare_type=True",
         "Did you pass `render_as_batch=True`"),
        ("render_as_batch=True, compare_type=True", "render_as_batch=True, compare_type=False",
         "Did you pass `compare_type=True`"),
        ("    migrate.init_app(app, db)\n", "", "Do you call `migrate.init_app(app, db)`"),
        ("    migrate.init_app(app, db)\n", "    migrate.init_app(app)\n", "Did you pass `db` too"),
        ("compare_type=True)", 'compare_type=True, directory="db_migrations")', "Did you pass a `directory=`?"),
        ("migrate = Migrate(render_as_batch=True, compare_type=True)", "migrate = None",
         "`migrate = Migrate(...)` in `tickethub/db.py`"),
        ("    app.cli.add_command(init_db_command)\n", "", "Did you keep `app.cli.add_command(init_db_command)`?"),
    ],
)
def test_wrong_wiring_fails(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(DB, old, new).check("ex1"), expected)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("    migrate.init_app(app, db, render_as_batch=False)\n", "`render_as_batch=True` in the app's Flask-Migrate"),
        ('    migrate.init_app(app, db, directory="db_migrations")\n', "Did you pass a `directory=`?"),
    ],
)
def test_options_given_to_init_app_are_checked(project, new, expected):
    """Are the options `init_app` overrides checked too, not only those of `Migrate(...)`?"""
    assert_rejected(project(CHAPTER).edit(DB, "    migrate.init_app(app, db)\n", new).check("ex1"), expected)


def test_missing_env_py_fails(project):
    """Does a migration folder without `env.py` fail with a hint, not as the check's own problem?"""
    p = project(CHAPTER)
    (p.root / "migrations/env.py").unlink()
    assert_rejected(p.check("ex1"), "Is `migrations/` complete")


def test_broken_initial_revision_fails(project):
    """Does a damaged given revision show up in exercise 1, pointing at the file?"""
    p = project(CHAPTER).edit("migrations/versions/0001_initial.py", '    op.drop_table("venues")\n', "")
    assert_rejected(p.check("ex1"), "Is `migrations/versions/0001_initial.py` as the notebook's cell wrote it?")


# --- exercise 2: a rename in batch mode -----------------------------------------------------------------

RENAME_ALTERNATIVE = '''
"""Rename halls.town to halls.city (SQLite can do that in place), then widen it in a batch."""
from alembic import op
import sqlalchemy as sa

revision = "0002_rename_town"
down_revision = "0001"


def upgrade():
    op.alter_column("halls", "town", new_column_name="city")
    with op.batch_alter_table("halls", recreate="always") as batch_op:
        batch_op.alter_column("city", type_=sa.String(80))


def downgrade():
    with op.batch_alter_table("halls") as batch_op:
        batch_op.alter_column("city", type_=sa.String(40), existing_type=sa.String(80))
    with op.batch_alter_table("halls") as batch_op:
        batch_op.alter_column("city", new_column_name="town")
'''

RENAME_DROP_AND_ADD = '''
from alembic import op
import sqlalchemy as sa

revision = "0002_rename_town"
down_revision = "0001"


def upgrade():
    with op.batch_alter_table("halls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("city", sa.String(length=80), nullable=True))
        batch_op.drop_column("town")


def downgrade():
    with op.batch_alter_table("halls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("town", sa.VARCHAR(length=40), nullable=True))
        batch_op.drop_column("city")
'''

RENAME_WITHOUT_BATCH = '''
from alembic import op
import sqlalchemy as sa

revision = "0002_rename_town"
down_revision = "0001"


def upgrade():
    op.alter_column("halls", "town", new_column_name="city", existing_type=sa.String(40), type_=sa.String(80))


def downgrade():
    op.alter_column("halls", "city", new_column_name="town", existing_type=sa.String(80), type_=sa.String(40))
'''


def test_rename_alternative_passes(project):
    """Are a rename outside the batch, two batches and `recreate="always"` accepted?"""
    assert_outcome(project(CHAPTER).write(RENAME, RENAME_ALTERNATIVE).check("ex2"), Outcome.PASS)


def test_drop_and_add_fails(project):
    """Does autogenerate's version of a rename, which loses every town, fail?"""
    assert_rejected(project(CHAPTER).write(RENAME, RENAME_DROP_AND_ADD).check("ex2"), "Did you drop one column and add another?")


def test_rename_without_batch_mode_fails(project):
    """Does a plain `op.alter_column` that SQLite cannot run fail, asking for batch mode?"""
    result = project(CHAPTER).write(RENAME, RENAME_WITHOUT_BATCH).check("ex2")
    assert_rejected(result, "op.batch_alter_table")
    assert "rename_town.py, line" in result.text(), result.text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('type_=sa.String(length=80), existing_nullable=True)', 'existing_nullable=True)',
         "`halls.city` is `String(80)` on SQLite"),
        ('''        batch_op.alter_column("city", new_column_name="town", existing_type=sa.String(length=80),
                              type_=sa.String(length=40), existing_nullable=True)''',
         "        pass", "Does `downgrade()` rename `city` back to `town`?"),
        ('type_=sa.String(length=40), existing_nullable=True)', 'existing_nullable=True)',
         "`halls.town` is `String(40)`"),
        ('new_column_name="city"', 'new_column_name="town_name"', "the column `halls.city`"),
    ],
)
def test_wrong_renames_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(RENAME, old, new).check("ex2"), expected)


# --- exercise 3: the slug in the model ---------------------------------------------------------------


def test_slug_model_alternative_passes(project):
    """Are `re.findall`, `context.current_parameters` and a table-level unique constraint accepted?"""
    p = project(CHAPTER)
    p.edit(MODELS, '''    name = context.get_current_parameters()["name"]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")''',
           '''    words = re.findall(r"[a-z0-9]+", context.current_parameters["name"].lower())
    return "-".join(words)''')
    p.edit(MODELS, "mapped_column(String(140), unique=True, default=_slug_from_name)",
           "mapped_column(String(140), default=_slug_from_name)")
    p.edit(MODELS, '    events: Mapped[list["Event"]] = relationship(back_populates="venue")\n',
           '    events: Mapped[list["Event"]] = relationship(back_populates="venue")\n\n'
           '    __table_args__ = (UniqueConstraint("slug"),)\n')
    assert_outcome(p.check("ex3"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")', 'name.lower().replace(" ", "-")', "Lowercase first"),
        ('re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")', 're.sub(r"[^a-z0-9]+", "-", name.lower())',
         "Lowercase first"),
        ('re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")', 're.sub(r"[^a-z0-9]", "-", name.lower()).strip("-")',
         "Lowercase first"),
        ('re.sub(r"[^a-z0-9]+", "-", name.lower())', 're.sub(r"[^a-z0-9]+", "-", name).lower()', "Lowercase first"),
        ("    return re.sub(", "    re.sub(", "default=_slug_from_name"),
        (", default=_slug_from_name)", ")", "default=_slug_from_name"),
        ("slug: Mapped[str]", "slug: Mapped[str | None]", "Is it annotated `Mapped[str]`"),
        ("String(140), unique=True", "String(140)", "`Venue.slug` is unique"),
        ("String(140), unique=True", "String(100), unique=True", "`Venue.slug` is `String(140)`"),
        ("    slug: Mapped[str] = mapped_column(String(140), unique=True, default=_slug_from_name)\n", "",
         "a column `Venue.slug`"),
    ],
)
def test_wrong_slug_models_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(MODELS, old, new).check("ex3"), expected)


SLUG_RULE = 're.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")'
NEAR_MISSES = [  # slug rules right for most names: each is wrong only at one boundary
    're.sub(r"[^a-z0-9]+", "-", name.lower())',  # hyphens left at the ends
    're.sub(r"[^a-z0-9]", "-", name.lower()).strip("-")',  # a run of separators gives several hyphens
    're.sub(r"[^a-z0-9]+", "-", name).lower().strip("-")',  # upper case letters become hyphens
    're.sub(r"[\\W_]+", "-", name.lower()).strip("-")',  # letters outside a-z (é) are kept
    're.sub(r"\\W+", "-", name.lower()).strip("-")',  # underscores are kept
]


@pytest.mark.parametrize("rule", NEAR_MISSES)
def test_near_miss_slug_rules_fail_whatever_the_seed(project, rule):
    """Does every check send the names that tell these rules apart, so that no seed lets one pass?"""
    p = project(CHAPTER).edit(MODELS, SLUG_RULE, rule)
    for seed in range(4):
        assert_rejected(p.check("ex3", seed=seed), "Lowercase first")
    p.edit(MODELS, rule, SLUG_RULE).edit(SLUG, SLUG_RULE, rule)  # the same near miss in the migration's slugify()
    for seed in range(4):
        assert_rejected(p.check("ex4", seed=seed), "each with `slugify(name)`")


def test_a_unique_index_instead_of_the_constraint_fails(project):
    """Is a unique index on `slug` (`unique=True, index=True`) refused on both databases?

    On SQLite its violation reads like the constraint's; on PostgreSQL it is reported by the index's
    name, which the venue service does not answer with 409.
    """
    p = project(CHAPTER).edit(MODELS, "String(140), unique=True,", "String(140), unique=True, index=True,")
    assert_rejected(p.check("ex3"), "a unique index, not a constraint")


def test_venue_that_is_not_the_model_fails(project):
    """Does a `Venue` that no longer maps `venues` fail with feedback, not as the check's own problem?"""
    p = project(CHAPTER).edit(MODELS, "class Venue(db.Model):", "class Venue:\n    pass\n\n\nclass Hall(db.Model):")
    assert_rejected(p.check("ex3"), "`Venue`, the model of the table `venues`")


# --- exercise 4: the backfilling migration ------------------------------------------------------------

SLUG_ALTERNATIVE_UPGRADE = '''def upgrade():
    op.add_column("venues", sa.Column("slug", sa.String(140)))
    connection = op.get_bind()
    rows = connection.execute(sa.select(venues.c.id, venues.c.name)).all()
    if rows:  # one statement for every row (executemany)
        connection.execute(
            venues.update().where(venues.c.id == sa.bindparam("venue_id")).values(slug=sa.bindparam("new_slug")),
            [{"venue_id": venue_id, "new_slug": slugify(name)} for venue_id, name in rows],
        )
    with foreign_keys_off():
        with op.batch_alter_table("venues", schema=None) as batch_op:
            batch_op.alter_column("slug", existing_type=sa.String(140), nullable=False)
            batch_op.create_unique_constraint("uq_venues_slug", ["slug"])


def downgrade():
    with foreign_keys_off():
        with op.batch_alter_table("venues", schema=None) as batch_op:
            batch_op.drop_constraint("uq_venues_slug", type_="unique")
            batch_op.drop_column("slug")
'''


def test_slug_migration_alternative_passes(project):
    """Are an executemany backfill, nested `with` blocks and plain constraint names accepted?"""
    p = project(CHAPTER)
    text = p.read(SLUG)
    p.write(SLUG, text[: text.index("def upgrade")] + SLUG_ALTERNATIVE_UPGRADE)
    assert_outcome(p.check("ex4"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (*NOT_NULL_AT_ONCE, "nullable=True"),
        (  # no backfill: the batch copy meets the empty slugs
            '''    for venue_id, name in connection.execute(sa.select(venues.c.id, venues.c.name)).all():
        connection.execute(venues.update().where(venues.c.id == venue_id).values(slug=slugify(name)))''',
            "", "give every venue its slug"),
        pytest.param(  # SQLite refuses to drop venues while events refer to it (PostgreSQL alters in place)
            'with foreign_keys_off(), op.batch_alter_table("venues") as batch_op:\n        batch_op.alter_column',
            'with op.batch_alter_table("venues") as batch_op:\n        batch_op.alter_column',
            "foreign_keys_off()", marks=pytest.mark.backends("sqlite")),
        ("values(slug=slugify(name))", "values(slug=name.lower())", "Do you update every venue, each with `slugify(name)`"),
        (*NO_UNIQUE, "the database refuses a second venue"),
        ('batch_op.f("uq_venues_slug"), ["slug"])', 'batch_op.f("uq_slug"), ["slug"])', "Is the constraint named `uq_venues_slug`"),
        pytest.param(  # constraints cannot be added without batch mode on SQLite (PostgreSQL can)
            '''    with foreign_keys_off(), op.batch_alter_table("venues") as batch_op:
        batch_op.alter_column("slug", existing_type=sa.String(length=140), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_venues_slug"), ["slug"])''',
            '''    op.alter_column("venues", "slug", existing_type=sa.String(length=140), nullable=False)
    op.create_unique_constraint(op.f("uq_venues_slug"), "venues", ["slug"])''',
            "op.batch_alter_table", marks=pytest.mark.backends("sqlite")),
        (*NO_DOWNGRADE, "Does `downgrade()` drop the constraint"),
        ('down_revision = "0001_initial"', "down_revision = None", "Did you keep `down_revision = \"0001_initial\"`?"),
        ("import sqlalchemy as sa\n", "import sqlalchemy as sa\nfrom tickethub.models import Venue  # noqa: F401\n",
         "brings everything it needs"),
    ],
)
def test_wrong_slug_migrations_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(SLUG, old, new).check("ex4"), expected)


def test_slug_migration_error_points_at_the_learners_line(project):
    """Does a database error inside the migration name the learner's file and line?"""
    result = project(CHAPTER).edit(SLUG, *NOT_NULL_AT_ONCE).check("ex4")
    assert "0002_venue_slug.py, line" in result.text(), result.text()


def test_slug_migration_does_not_need_the_other_exercises(project):
    """Is exercise 4 checked on its own, with exercises 1 and 3 still at their starters?"""
    p = project(CHAPTER)
    for cell in workspace.exercise_files(CHAPTER, "ex1") + workspace.exercise_files(CHAPTER, "ex3"):
        p.write(cell["path"], cell["starter"])
    assert_outcome(p.check("ex4"), Outcome.PASS)


def test_backfill_that_needs_rows_fails_on_an_empty_database(project):
    """Does an executemany backfill without a guard fail on a fresh install, with a hint, not a crash?"""
    p = project(CHAPTER)
    text = p.read(SLUG)
    p.write(SLUG, text[: text.index("def upgrade")] + SLUG_ALTERNATIVE_UPGRADE.replace(
        "    if rows:  # one statement for every row (executemany)\n        connection.execute(",
        "    if True:\n        connection.execute("))
    assert_rejected(p.check("ex4"), "skip the backfill when there are no rows")
