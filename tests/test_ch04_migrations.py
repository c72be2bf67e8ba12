"""Do chapter 04's checks accept right answers and reject wrong ones?"""
import contextlib
import importlib
import io
import re
import warnings

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
    ("ex4", SLUG, ".order_by(venues.c.id)", "", "in id order"),  # PostgreSQL reads venues as stored: newest first
    ("ex4", SLUG, "            slug, number = f\"{slugify(name)}-{number}\", number + 1\n",
     "            slug, number = f\"{slugify(name)}-{number}\", number + 2\n", "the first free number"),
    ("ex3", MODELS, '.encode("ascii", "ignore").decode("ascii")', "", "The accents NFKD splits off are still there"),
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
    """Are both options spelled out, in another order, and the folder named at `init_app`, accepted?"""
    p = project(CHAPTER).edit(DB, "migrate = Migrate(render_as_batch=True)",
                              'migrate = Migrate(compare_type=True, render_as_batch=True, command="db")')
    p.edit(DB, "    migrate.init_app(app, db)\n", '    migrate.init_app(app, db=db, directory="migrations")\n')
    assert_outcome(p.check("ex1"), Outcome.PASS)


def test_migrate_with_the_defaults_passes(project):
    """Is `Migrate()` accepted? Flask-Migrate 4 turns batch mode and type comparison on by default."""
    p = project(CHAPTER).edit(DB, "migrate = Migrate(render_as_batch=True)", "migrate = Migrate()")
    assert_outcome(p.check("ex1"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Migrate(render_as_batch=True)", "Migrate(render_as_batch=False)", "Did you pass `render_as_batch=False`?"),
        ("Migrate(render_as_batch=True)", "Migrate(render_as_batch=True, compare_type=False)",
         "Did you pass `compare_type=False`?"),
        ("    migrate.init_app(app, db)\n", "", "Do you call `migrate.init_app(app, db)`"),
        ("    migrate.init_app(app, db)\n", "    migrate.init_app(app)\n", "Did you pass `db` too"),
        ("render_as_batch=True)", 'render_as_batch=True, directory="db_migrations")', "Did you pass a `directory=`?"),
        ("migrate = Migrate(render_as_batch=True)", "migrate = None", "`migrate = Migrate(...)` in `tickethub/db.py`"),
        ("    app.cli.add_command(init_db_command)\n", "", "Did you keep `app.cli.add_command(init_db_command)`?"),
    ],
)
def test_wrong_wiring_fails(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(DB, old, new).check("ex1"), expected)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("    migrate.init_app(app, db, render_as_batch=False)\n", "`render_as_batch` on (`True`) in the app's Flask-Migrate"),
        ("    migrate.init_app(app, db, compare_type=False)\n", "`compare_type` on (`True`) in the app's Flask-Migrate"),
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

SLUG_RULE = '''    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")
    # nothing left ("東京ドーム"): a slug from the name's hash, the same for the same name
    return slug or "venue-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]'''
SLUG_COLUMN = "    slug: Mapped[str] = mapped_column(String(140), unique=True, default=_slug_from_name)\n"


def test_slug_model_alternative_passes(project):
    """Are another spelling of the rule, an event listener instead of a default, and a table-level unique accepted?"""
    p = project(CHAPTER)
    p.edit(MODELS, SLUG_RULE, '''    kept = "".join(c for c in unicodedata.normalize("NFKD", name) if c.isascii()).lower()
    words = re.findall(r"[a-z0-9]+", kept)
    if not words:
        return f"venue-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return "-".join(words)''')
    p.edit(MODELS, SLUG_COLUMN, "    slug: Mapped[str] = mapped_column(String(140))\n")
    p.edit(MODELS, '    events: Mapped[list["Event"]] = relationship(back_populates="venue")\n',
           '    events: Mapped[list["Event"]] = relationship(back_populates="venue")\n\n'
           '    __table_args__ = (UniqueConstraint("slug"),)\n\n\n'
           '@event.listens_for(Venue, "before_insert")\n'
           'def _give_slug(mapper, connection, venue):\n'
           '    if venue.slug is None:\n'
           '        venue.slug = slugify(venue.name)\n')
    p.edit(MODELS, "from sqlalchemy import CheckConstraint", "from sqlalchemy import event, CheckConstraint")
    assert_outcome(p.check("ex3"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [  # each breaks one requirement of exercise 3's text; the rule's steps first
        ('unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")', 'name.encode("ascii", "ignore").decode()',
         "NFKD splits it"),  # 1: no normalisation, so "Café" gives "caf"
        ('unicodedata.normalize("NFKD", name)', 'unicodedata.normalize("NFKC", name)', "NFC and NFKC keep"),
        ('unicodedata.normalize("NFKD", name)', 'unicodedata.normalize("NFD", name)', "NFD leaves a ligature"),
        ('.encode("ascii", "ignore").decode("ascii")', "", "The accents NFKD splits off are still there"),
        ('unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")',
         '"".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))',
         "must go, not become a hyphen"),  # 1: "ø" becomes a separator instead of going
        ('plain.lower()).strip("-")', 'plain).lower().strip("-")', "lowercase before"),  # 2: lowercase first
        ('r"[^a-z0-9]+"', 'r"[^a-z0-9]"', "with the `+`"),  # 2: one hyphen per run
        ('.strip("-")\n', "\n", "No hyphen at either end"),  # 2: none at either end
        ('r"[^a-z0-9]+"', 'r"\\W+"', "An underscore is not a letter"),  # 2: an underscore is a separator too
        ('slug or "venue-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]', "slug",
         "Nothing of this name is left"),  # 3: no fallback
        ('slug or "venue-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]', 'slug or "venue"',
         "Nothing of this name is left"),  # 3: the same fallback for every name
        ("hashlib.sha1(name.encode", "hashlib.md5(name.encode", "Nothing of this name is left"),  # 3: SHA-1
        ('hashlib.sha1(name.encode("utf-8"))', 'hashlib.sha1(plain.encode("utf-8"))', "Nothing of this name is left"),
        ("hexdigest()[:8]", "hexdigest()[:10]", "Nothing of this name is left"),  # 3: 8 hex digits
        ("    return slug or", "    slug or", "Does `slugify` end with `return slug`?"),
        # the column
        ("String(140), unique=True", "String(100), unique=True", "`Venue.slug` is `String(140)`"),
        ("slug: Mapped[str]", "slug: Mapped[str | None]", "Is it annotated `Mapped[str]`"),
        ("String(140), unique=True", "String(140)", "`Venue.slug` is unique"),
        (SLUG_COLUMN, "", "a column `Venue.slug`"),
        (", default=_slug_from_name)", ")", "Does every venue created without a slug get one"),
        ('return slugify(context.get_current_parameters()["name"])', 'return slugify(context.get_current_parameters()["city"])',
         "of the venue's own name"),
    ],
)
def test_wrong_slug_models_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(MODELS, old, new).check("ex3"), expected)


def test_a_slug_given_is_kept(project):
    """Does a listener that always overwrites the slug fail, as a venue created with a slug must keep it?"""
    p = project(CHAPTER).edit(MODELS, SLUG_COLUMN, "    slug: Mapped[str] = mapped_column(String(140), unique=True)\n")
    p.edit(MODELS, '    events: Mapped[list["Event"]] = relationship(back_populates="venue")\n',
           '    events: Mapped[list["Event"]] = relationship(back_populates="venue")\n\n\n'
           '@event.listens_for(Venue, "before_insert")\n'
           'def _give_slug(mapper, connection, venue):\n'
           '    venue.slug = slugify(venue.name)\n')
    p.edit(MODELS, "from sqlalchemy import CheckConstraint", "from sqlalchemy import event, CheckConstraint")
    assert_rejected(p.check("ex3"), "keeps it")


NEAR_MISSES = [  # slug rules right for plain English names: each is wrong only at one boundary, every seed
    (SLUG_RULE.replace('.strip("-")', ""), "No hyphen at either end"),
    (SLUG_RULE.replace('r"[^a-z0-9]+"', 'r"[^a-z0-9]"'), "with the `+`"),  # a run of separators, several hyphens
    (SLUG_RULE.replace('plain.lower()).strip("-")', 'plain).lower().strip("-")'), "lowercase before"),
    (SLUG_RULE.replace('"NFKD"', '"NFC"'), "NFC and NFKC keep"),  # accents are dropped with their letters
    (SLUG_RULE.replace('r"[^a-z0-9]+"', 'r"\\W+"'), "An underscore is not a letter"),  # underscores are kept
    (SLUG_RULE.replace('slug or "venue-"', 'slug or "hall-"'), "Nothing of this name is left"),  # another fallback
]


@pytest.mark.parametrize(("rule", "hint"), NEAR_MISSES)
def test_near_miss_slug_rules_fail_whatever_the_seed(project, rule, hint):
    """Does every check send the names that tell these rules apart, so that no seed lets one pass, with its hint?"""
    p = project(CHAPTER).edit(MODELS, SLUG_RULE, rule)
    assert_rejected(p.sweep("ex3"), hint)
    p.edit(MODELS, rule, SLUG_RULE).edit(SLUG, SLUG_RULE, rule)  # the same near miss in the migration's slugify()
    assert_rejected(p.sweep("ex4"), "each with `slugify(name)`")


def test_slugify_that_raises_is_the_learners_error(project):
    """Does a `slugify` that raises on a name report the learner's exception and line, not a crash?"""
    p = project(CHAPTER).edit(MODELS, '    plain = unicodedata', '    name.encode("ascii")\n    plain = unicodedata')
    result = p.check("ex3")
    assert_outcome(result, Outcome.ERROR, "UnicodeEncodeError", "models.py, line")


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
    rows = connection.execute(sa.select(venues.c.id, venues.c.name).order_by(venues.c.id.asc())).all()
    slugs = {}  # slug -> venue id, in id order
    for venue_id, name in rows:
        base = slug = slugify(name)
        suffixes = itertools.count(2)
        while slug in slugs:
            slug = f"{base}-{next(suffixes)}"
        slugs[slug] = venue_id
    if rows:  # one statement for every row (executemany)
        connection.execute(
            venues.update().where(venues.c.id == sa.bindparam("venue_id")).values(slug=sa.bindparam("new_slug")),
            [{"venue_id": venue_id, "new_slug": slug} for slug, venue_id in slugs.items()],
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
BACKFILL = '''    given = set()
    for venue_id, name in connection.execute(sa.select(venues.c.id, venues.c.name).order_by(venues.c.id)).all():
        slug, number = slugify(name), 2
        while slug in given:
            slug, number = f"{slugify(name)}-{number}", number + 1
        given.add(slug)
        connection.execute(venues.update().where(venues.c.id == venue_id).values(slug=slug))'''
PER_NAME_COUNT = '''    seen = collections.Counter()
    for venue_id, name in connection.execute(sa.select(venues.c.id, venues.c.name).order_by(venues.c.id)).all():
        seen[slugify(name)] += 1
        slug = slugify(name) if seen[slugify(name)] == 1 else f"{slugify(name)}-{seen[slugify(name)]}"
        connection.execute(venues.update().where(venues.c.id == venue_id).values(slug=slug))'''
NO_NUMBERS = '''    for venue_id, name in connection.execute(sa.select(venues.c.id, venues.c.name).order_by(venues.c.id)).all():
        connection.execute(venues.update().where(venues.c.id == venue_id).values(slug=slugify(name)))'''


def _with_upgrade(p, body: str):
    """The project with `body` in place of the reference's upgrade() and downgrade()."""
    text = p.read(SLUG).replace("import hashlib\n", "import hashlib\nimport itertools\n")
    return p.write(SLUG, text[: text.index("def upgrade")] + body)


def test_slug_migration_alternative_passes(project):
    """Are a dict of slugs, an executemany backfill, nested `with` blocks and plain constraint names accepted?"""
    assert_outcome(_with_upgrade(project(CHAPTER), SLUG_ALTERNATIVE_UPGRADE).check("ex4"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [  # each breaks one requirement of exercise 4's text
        (*NOT_NULL_AT_ONCE, "nullable=True"),
        (BACKFILL, "", "give every venue its slug"),  # no backfill: the batch copy meets the empty slugs
        ("values(slug=slug)", "values(slug=name.lower())", "each with `slugify(name)`"),
        (BACKFILL, NO_NUMBERS, "number a taken one"),  # clashes: the unique constraint refuses the second venue
        ("slugify(name), 2\n", "slugify(name), 1\n", "the first free number"),  # numbered from -2
        ("number + 1", "number + 2", "the first free number"),  # -2, -3, ...: the first free one
        (BACKFILL, PER_NAME_COUNT, "number a taken one"),  # a name's own count can hit a slug another venue got
        ('f"{slugify(name)}-{number}"', 'f"{slugify(name)}{number}"', "the first free number"),  # "-2", not "2"
        (".order_by(venues.c.id)", ".order_by(venues.c.id.desc())", "in id order"),  # the first venue keeps it
        # no order at all: SQLite reads the names' unique index (name order), PostgreSQL the order rows were stored in
        (".order_by(venues.c.id)", "", "in id order"),
        pytest.param(  # SQLite refuses to drop venues while events refer to it (PostgreSQL alters in place)
            'with foreign_keys_off(), op.batch_alter_table("venues") as batch_op:\n        batch_op.alter_column',
            'with op.batch_alter_table("venues") as batch_op:\n        batch_op.alter_column',
            "foreign_keys_off()", marks=pytest.mark.backends("sqlite")),
        (*NO_UNIQUE, "the database refuses a second venue"),
        ('batch_op.f("uq_venues_slug"), ["slug"])', 'batch_op.f("uq_slug"), ["slug"])', "Is the constraint named `uq_venues_slug`"),
        pytest.param(  # constraints cannot be added without batch mode on SQLite (PostgreSQL can)
            '''    with foreign_keys_off(), op.batch_alter_table("venues") as batch_op:
        batch_op.alter_column("slug", existing_type=sa.String(length=140), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_venues_slug"), ["slug"])''',
            '''    op.alter_column("venues", "slug", existing_type=sa.String(length=140), nullable=False)
    op.create_unique_constraint(op.f("uq_venues_slug"), "venues", ["slug"])''',
            "op.batch_alter_table", marks=pytest.mark.backends("sqlite")),
        ('sa.Column("slug", sa.String(length=140), nullable=True)', 'sa.Column("slug", sa.String(length=100), nullable=True)',
         "`venues.slug` is `VARCHAR(140)`"),
        (*NO_DOWNGRADE, "Does `downgrade()` drop the constraint"),
        ('down_revision = "0001_initial"', "down_revision = None", "Did you keep `down_revision = \"0001_initial\"`?"),
        ("import sqlalchemy as sa\n", "import sqlalchemy as sa\nfrom tickethub.models import Venue  # noqa: F401\n",
         "brings everything it needs"),
    ],
)
def test_wrong_slug_migrations_fail(project, old, new, expected):
    p = project(CHAPTER).edit(SLUG, "import hashlib\n", "import collections\nimport hashlib\n")
    assert_rejected(p.edit(SLUG, old, new).check("ex4"), expected)


@pytest.mark.parametrize(("old", "new"), [(BACKFILL, NO_NUMBERS), (BACKFILL, PER_NAME_COUNT),
                                          ("slugify(name), 2\n", "slugify(name), 1\n")])
def test_clashes_are_sent_whatever_the_seed(project, old, new):
    """Does every seed bring the clashing names, so that no seed lets a backfill that mishandles them pass?"""
    p = project(CHAPTER).edit(SLUG, "import hashlib\n", "import collections\nimport hashlib\n").edit(SLUG, old, new)
    assert [r.outcome for r in p.sweep("ex4")] == [Outcome.FAIL] * p.seeds


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
    p = _with_upgrade(project(CHAPTER), SLUG_ALTERNATIVE_UPGRADE.replace(
        "    if rows:  # one statement for every row (executemany)\n        connection.execute(",
        "    if True:\n        connection.execute("))
    assert_rejected(p.check("ex4"), "skip the backfill when there are no rows")


# --- the migration environment the chapter gives -------------------------------------------------------


def test_the_given_environment_is_what_init_writes(tmp_path):
    """Are README, alembic.ini and script.py.mako Flask-Migrate's, and env.py too but for `db.engine`?"""
    from flask import Flask
    from flask_migrate import Migrate, init
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("init", root_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    Migrate(app, SQLAlchemy(app))
    with app.app_context(), contextlib.redirect_stdout(io.StringIO()):
        init(directory=str(tmp_path / "migrations"))
    given = workspace.files(CHAPTER, "solution")
    for name in ("README", "alembic.ini", "script.py.mako"):
        assert given[f"migrations/{name}"] == (tmp_path / "migrations" / name).read_text(), name
    made, ours = (tmp_path / "migrations/env.py").read_text(), given["migrations/env.py"]
    split = re.compile(r"^def get_engine\(\):\n(.*?)(?=^def get_engine_url)", re.S | re.M)
    assert split.sub("", made) == split.sub("", ours), "env.py differs outside get_engine()"
    assert "db.get_engine()" in split.search(made)[1]
    assert split.search(ours)[1].strip().splitlines()[-1].strip() == "return current_app.extensions['migrate'].db.engine"
    assert "get_engine()" not in split.search(ours)[1].replace("`db.get_engine()`", "")


def test_the_reference_chain_warns_of_nothing_deprecated(tmp_path, learner_package):
    """Do the reference's migrations run up and down without a DeprecationWarning (env.py uses `db.engine`)?"""
    from flask_migrate import downgrade, upgrade

    app = learner_package(CHAPTER, "solution").create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'up.sqlite'}"})
    with warnings.catch_warnings(), app.app_context(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("error", DeprecationWarning)
        upgrade(directory="migrations")
        downgrade(directory="migrations", revision="base")
