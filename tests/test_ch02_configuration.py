"""Do chapter 02's checks accept right answers and reject wrong ones?"""
import shutil
import subprocess

import pytest

from checkers.engine import workspace
from checkers.chapters.ch02_configuration import gitignore_rules, gitignored
from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "02-configuration"
CONFIG = "tickethub/config.py"
STARTUP = "tickethub/startup.py"
INIT = "tickethub/__init__.py"
WSGI = "wsgi.py"
GITIGNORE = ".gitignore"


# --- exercise 1: config classes ----------------------------------------------------------------

DEV_DOC = '    """Your laptop: Config\'s defaults as they are. Debug mode comes from `flask run --debug`."""\n'
CONFIG_ALTERNATIVE = '''
"""Settings per environment, written differently."""
import os


class Config:
    SECRET_KEY = "dev"
    TESTING = False
    MAX_TICKETS_PER_ORDER = 10
    SITE_NAME = "TicketHub"
    JSON_SORT_KEYS = True

    @classmethod
    def describe(cls):
        return cls.__name__


class DevelopmentConfig(Config):
    pass


class TestingConfig(Config):
    TESTING = True
    WTF_CSRF_ENABLED = False


class ProductionConfig(Config):
    SECRET_KEY = os.environ.get("TICKETHUB_SECRET_KEY")  # read at import time: None in the check
    SESSION_COOKIE_SECURE = True


configs = dict(development=DevelopmentConfig, testing=TestingConfig, production=ProductionConfig)
'''


def test_config_alternative_passes(project):
    """Are extra settings, helpers and `dict(...)` accepted?"""
    assert_outcome(project(CHAPTER).write(CONFIG, CONFIG_ALTERNATIVE).sweep("ex1"), Outcome.PASS)


def test_configs_of_a_dict_subclass_pass(project):
    """Is `configs` accepted as any kind of dict (it crosses to the judge as a plain one)?"""
    p = project(CHAPTER).edit(CONFIG, "configs = {", "import collections\n\nconfigs = collections.OrderedDict({")
    assert_outcome(p.edit(CONFIG, "ProductionConfig}", "ProductionConfig})").check("ex1"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # a real-looking secret written into the code
            "SECRET_KEY = None  # never in code: set TICKETHUB_SECRET_KEY",
            'SECRET_KEY = "8f4e2a9c1b7d3e5f6a0b8c2d4e6f8a1b3c5d7e9f"',
            "Did you override `SECRET_KEY` in `ProductionConfig`?",
        ),
        (  # production forgets to override the key, so it inherits "dev"
            "    SECRET_KEY = None  # never in code: set TICKETHUB_SECRET_KEY\n",
            "",
            "`ProductionConfig.SECRET_KEY` is 'dev'",
        ),
        (  # the old idiom: DEBUG in the development class, which the flask command overwrites
            DEV_DOC,
            DEV_DOC + "\n    DEBUG = True\n",
            "`DevelopmentConfig` has no `DEBUG`",
        ),
        (  # DEBUG = False as a shared default: it hides FLASK_DEBUG from verify_config
            '    TESTING = False\n',
            '    TESTING = False\n    DEBUG = False\n',
            "`Config` has no `DEBUG`",
        ),
        (  # production "makes sure" debug mode is off, and so hides it
            "    SESSION_COOKIE_SECURE = True\n",
            "    SESSION_COOKIE_SECURE = True\n    DEBUG = False\n",
            "`ProductionConfig` has no `DEBUG`",
        ),
        (  # a string where a bool belongs
            "    TESTING = True\n",
            '    TESTING = "True"\n',
            "`TestingConfig.TESTING` is 'True'",
        ),
        (  # a number as text
            "MAX_TICKETS_PER_ORDER = 10",
            'MAX_TICKETS_PER_ORDER = "10"',
            "`Config.MAX_TICKETS_PER_ORDER = 10`",
        ),
        (  # lowercase settings are ignored by from_object()
            "    SITE_NAME = ",
            "    site_name = ",
            "Is the name spelled in UPPERCASE",
        ),
        (
            "    SESSION_COOKIE_SECURE = True\n",
            "",
            "`ProductionConfig.SESSION_COOKIE_SECURE = True`",
        ),
        (  # a missing environment
            ', "production": ProductionConfig}',
            "}",
            "exactly the keys",
        ),
        (  # instances instead of classes
            '"development": DevelopmentConfig,',
            '"development": DevelopmentConfig(),',
            "Did you map `\"development\"` to the class itself",
        ),
    ],
)
def test_config_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(CONFIG, old, new).sweep("ex1"), expected)


def test_feedback_shows_no_memory_address(project):
    """Is an instance where a class belongs described without its address?"""
    result = project(CHAPTER).edit(CONFIG, '"testing": TestingConfig,', '"testing": TestingConfig(),').check("ex1")
    assert_outcome(result, Outcome.FAIL, "<tickethub.config.TestingConfig object>")
    assert "0x" not in result.text()


# --- exercise 2: verify_config ----------------------------------------------------------------------

STARTUP_ALTERNATIVE = '''
"""Start-up checks, written differently."""

MIN_SECRET_KEY_LENGTH = 32
WEAK = {"dev", "secret", "changeme", "change-me"}
RELAXED = frozenset({"development", "testing"})


class ConfigError(RuntimeError):
    """The configuration is not safe to run with."""


def verify_config(config, environment="production"):
    """Raise ConfigError if `config` is unsafe to run with."""
    relaxed = environment in RELAXED
    key = config.get("SECRET_KEY")
    problem = None
    if relaxed:
        return
    if config.get("DEBUG", False) is not False and config["DEBUG"]:
        raise ConfigError(f"{environment} must not run the debugger: remove FLASK_DEBUG=1")
    if key is None or key == "" or key == b"":
        problem = "SECRET_KEY is not set"
    elif not isinstance(key, (str, bytes)):
        problem = f"SECRET_KEY must be text, not {type(key).__name__}"
    elif key in WEAK or len(key) < MIN_SECRET_KEY_LENGTH:
        problem = "SECRET_KEY is too weak"
    if problem:
        raise ConfigError(
            f"{problem}. Put a long random value in TICKETHUB_SECRET_KEY, for example from "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'."
        )
'''


RELAXED_IF = '    if environment in ("development", "testing"):  # the name, which no setting can change\n        return\n'
DEBUG_IF = (
    '    if config.get("DEBUG"):\n'
    "        raise ConfigError(\n"
    '            f"Debug mode is on in {environment!r}: the debugger gives anyone who sees an error page a Python "\n'
    '            "console. Unset FLASK_DEBUG (and TICKETHUB_DEBUG), and start the server without --debug."\n'
    "        )\n"
)


def test_startup_alternative_passes(project):
    """Is a different structure, with other weak keys and `token_urlsafe`, accepted?"""
    assert_outcome(project(CHAPTER).write(STARTUP, STARTUP_ALTERNATIVE).sweep("ex2"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # checks the key even in development
            RELAXED_IF,
            "",
            "lets development and testing run without a real key",
        ),
        (  # the chapter's old rule: trusts settings that any TICKETHUB_* variable can switch on
            'if environment in ("development", "testing"):',
            'if config.get("DEBUG") or config.get("TESTING"):',
            "Do you `return` before any other test when `environment`",
        ),
        (  # strict in production only: a staging site runs with "dev"
            'if environment in ("development", "testing"):',
            'if environment != "production":',
            "neither development nor testing",
        ),
        (  # no debug-mode refusal
            DEBUG_IF,
            "",
            "even with a real key",
        ),
        (  # a debug refusal that does not say what to switch off
            "Unset FLASK_DEBUG (and TICKETHUB_DEBUG), and start",
            "Start",
            "a message that names `FLASK_DEBUG`",
        ),
        (  # any DEBUG key at all refused, also False
            '    if config.get("DEBUG"):\n',
            '    if "DEBUG" in config:\n',
            "debug mode is off",
        ),
        (  # exactly 32 characters refused
            "len(key) < MIN_SECRET_KEY_LENGTH",
            "len(key) <= MIN_SECRET_KEY_LENGTH",
            "Is the length test `len(key) < 32`",
        ),
        (  # no length check at all
            ' or len(key) < MIN_SECRET_KEY_LENGTH',
            "",
            "characters)",
        ),
        (  # no type check: len() of a number raises TypeError
            'not isinstance(key, (str, bytes)) or key in ("", "dev") or len(key)',
            'not key or key == "dev" or len(key)',
            "`TypeError",
        ),
        (  # a message that does not say what to do
            "Set the environment variable TICKETHUB_SECRET_KEY to",
            "Use",
            "a message that names `TICKETHUB_SECRET_KEY`",
        ),
        (  # the wrong exception type
            "raise ConfigError(",
            "raise ValueError(",
            "Do you raise `ConfigError` (not another exception)",
        ),
        (  # indexing crashes when the key is missing
            'key = config.get("SECRET_KEY")',
            'key = config["SECRET_KEY"]',
            "`KeyError",
        ),
    ],
)
def test_startup_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(STARTUP, old, new).sweep("ex2"), expected)


# --- exercise 3: layered configuration in create_app() -------------------------------------------------

INIT_ALTERNATIVE = '''
"""TicketHub: sell tickets to events."""
import os

from flask import Flask

from . import config as settings
from .startup import verify_config


def _config_class(name):
    try:
        return settings.configs[name]
    except KeyError:
        raise ValueError(f"unknown environment {name}; expected development, testing or production") from None


def create_app(test_config=None):
    """Create and configure an instance of the TicketHub app."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(_config_class(os.getenv("TICKETHUB_ENV") or "development"))
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(prefix="TICKETHUB")
    app.config.update(test_config or {})
    verify_config(app.config, os.getenv("TICKETHUB_ENV") or "development")

    from . import errors, events, venues, warmup

    app.register_blueprint(warmup.bp)
    app.register_blueprint(venues.bp, url_prefix="/api/venues")
    app.register_blueprint(events.bp, url_prefix="/api/events")
    errors.register_error_handlers(app)
    return app
'''

LAYERS = (
    "    app.config.from_object(configs[name])\n"
    '    app.config.from_pyfile("config.py", silent=True)\n'
    '    app.config.from_prefixed_env("TICKETHUB")\n'
)
TEST_CONFIG = "    if test_config is not None:\n        app.config.from_mapping(test_config)\n"


def test_init_alternative_passes(project):
    """Are a helper, `os.getenv`, `config.update` and a `try/except KeyError` accepted?"""
    assert_outcome(project(CHAPTER).write(INIT, INIT_ALTERNATIVE).sweep("ex3"), Outcome.PASS)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (  # defaults to production
            'os.environ.get("TICKETHUB_ENV", "development")',
            'os.environ.get("TICKETHUB_ENV", "production")',
            "Is the default of `os.environ.get(\"TICKETHUB_ENV\", ...)` `\"development\"`",
        ),
        (  # no validation: a bare KeyError
            "    if name not in configs:\n",
            "    if False:\n",
            "(A bare `configs[name]` raises a `KeyError`",
        ),
        (  # the error does not list the valid names
            "use one of: {valid}",
            "check your settings",
            "a message that lists `development`, `production` and `testing`",
        ),
        (  # loading the class is forgotten: no DEBUG, no key, so the start-up check refuses
            "    app.config.from_object(configs[name])\n",
            "",
            "do you load the class with `app.config.from_object(configs[name])`",
        ),
        (  # a missing instance file is an error
            'from_pyfile("config.py", silent=True)',
            'from_pyfile("config.py")',
            "Did you pass `silent=True`",
        ),
        (  # config files looked for in the package, not the instance folder
            "Flask(__name__, instance_relative_config=True)",
            "Flask(__name__)",
            "instance_relative_config=True",
        ),
        (  # the environment before the instance file
            LAYERS,
            "    app.config.from_object(configs[name])\n"
            '    app.config.from_prefixed_env("TICKETHUB")\n'
            '    app.config.from_pyfile("config.py", silent=True)\n',
            "the instance file's value",
        ),
        (  # reading the environment by hand keeps every value a string
            '    app.config.from_prefixed_env("TICKETHUB")\n',
            "    for key, value in os.environ.items():\n"
            '        if key.startswith("TICKETHUB_"):\n'
            '            app.config[key.removeprefix("TICKETHUB_")] = value\n',
            "(an `int`)",
        ),
        (  # test_config applied first, then overwritten by the other layers
            LAYERS + TEST_CONFIG,
            TEST_CONFIG + LAYERS,
            "Do you apply `test_config`",
        ),
        (  # no start-up check
            "    verify_config(app.config, name)  # last: the real secret arrives in a late layer\n",
            "",
            "Does `create_app()` call `verify_config(app.config, name)`",
        ),
        (  # the check told it is always development
            "verify_config(app.config, name)  #",
            'verify_config(app.config, "development")  #',
            "with the `name` it chose the class by",
        ),
        (  # checked too early, before the key arrives
            LAYERS,
            "    app.config.from_object(configs[name])\n"
            "    verify_config(app.config, name)\n"
            '    app.config.from_pyfile("config.py", silent=True)\n'
            '    app.config.from_prefixed_env("TICKETHUB")\n',
            "The key only arrives with the environment layer",
        ),
        (  # chapter 01's error handlers lost
            "    errors.register_error_handlers(app)\n",
            "",
            "Did you keep `errors.register_error_handlers(app)`",
        ),
    ],
)
def test_init_wrong_answers_fail(project, old, new, expected):
    assert_rejected(project(CHAPTER).edit(INIT, old, new).sweep("ex3"), expected)


def test_a_broken_factory_is_blamed_on_exercise_3_only(project):
    """Are `config.py` and `startup.py` checked on their own, so a half-written `__init__.py` breaks only ex3?"""
    p = project(CHAPTER).edit(INIT, "    verify_config(app.config, name)  #", "    verify_config(app.config, name) +  #")
    assert_outcome(p.check("ex1"), Outcome.PASS)
    assert_outcome(p.check("ex2"), Outcome.PASS)
    assert_outcome(p.check("ex3"), Outcome.ERROR, "SyntaxError", f"{INIT}, line")


def test_the_learners_own_instance_file_and_env_change_nothing(project):
    """Does the check set its own scene, whatever `instance/config.py` and `.env` the learner keeps, and leave them?"""
    p = project(CHAPTER).write("instance/config.py", "MAX_TICKETS_PER_ORDER = 3\nSECRET_KEY = 'dev'\n")
    p.write(".env", "TICKETHUB_ENV=testing\nTICKETHUB_SITE_NAME=Mine\n")
    for key in ("ex3", "ex4"):
        assert_outcome(p.check(key), Outcome.PASS)
    assert p.read("instance/config.py") == "MAX_TICKETS_PER_ORDER = 3\nSECRET_KEY = 'dev'\n"
    assert p.read(".env") == "TICKETHUB_ENV=testing\nTICKETHUB_SITE_NAME=Mine\n"


def test_init_waits_for_the_config_classes(project):
    """Is exercise 3 skipped with a clear message while exercise 1 is not done?"""
    p = project(CHAPTER).write(CONFIG, workspace.files(CHAPTER, "starter")[CONFIG])
    assert_outcome(p.check("ex3"), Outcome.FAIL, "Skipped", "exercise 1")


# --- exercise 4: wsgi.py --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # import first, load later: still before create_app() runs
        'from dotenv import load_dotenv\nfrom tickethub import create_app\n\nload_dotenv()\napp = create_app()\n',
        # an explicit path, found from the current folder
        'import dotenv\n\ndotenv.load_dotenv(dotenv.find_dotenv(usecwd=True))\n\nimport tickethub\n\n'
        'app = tickethub.create_app()\n',
    ],
)
def test_wsgi_alternatives_pass(project, text):
    assert_outcome(project(CHAPTER).write(WSGI, text).sweep("ex4"), Outcome.PASS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # the app is built before .env is loaded
            "from dotenv import load_dotenv\nfrom tickethub import create_app\n\napp = create_app()\nload_dotenv()\n",
            "Do you call `load_dotenv()` before `create_app()`?",
        ),
        (  # .env beats the real environment
            "from dotenv import load_dotenv\n\nload_dotenv(override=True)\n\nfrom tickethub import create_app\n\n"
            "app = create_app()\n",
            "Did you call `load_dotenv(override=True)`?",
        ),
        (  # .env copied into os.environ by hand: it overrides too
            "import os\nfrom dotenv import dotenv_values\n\nos.environ.update(dotenv_values('.env'))\n\n"
            "from tickethub import create_app\n\napp = create_app()\n",
            "Did you call `load_dotenv(override=True)`?",
        ),
        (  # no .env loading at all
            "from tickethub import create_app\n\napp = create_app()\n",
            "Do you call `load_dotenv()` before `create_app()`?",
        ),
        (  # no app
            "from dotenv import load_dotenv\n\nload_dotenv()\n\nfrom tickethub import create_app\n\n"
            "application = create_app()\n",
            "Did you end `wsgi.py` with `app = create_app()`?",
        ),
    ],
)
def test_wsgi_wrong_answers_fail(project, text, expected):
    assert_rejected(project(CHAPTER).write(WSGI, text).sweep("ex4"), expected)


def test_wsgi_needing_a_dotenv_file_fails(project):
    """Does an entry point that only works with a `.env` file fail on a server without one?"""
    text = (
        "from dotenv import find_dotenv, load_dotenv\n\n"
        "load_dotenv(find_dotenv(raise_error_if_not_found=True, usecwd=True))\n\n"
        "from tickethub import create_app\n\napp = create_app()\n"
    )
    result = project(CHAPTER).write(WSGI, text).check("ex4")
    assert_outcome(result, Outcome.ERROR, "File not found", "wsgi.py, line 3")
    assert "`wsgi.py` also works with no `.env` file" in result.text()


# --- exercise 5: .gitignore ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "/.env\n/instance\n*.py[co]\n",
        ".env\ninstance/*\n__pycache__\n",
        "# everything .env-like, except the example\n.env*\n!.env.example\n**/instance/\n**/__pycache__/\n",
        "*.pyc\n.env\n\ninstance/\n__pycache__/\n",
    ],
)
def test_gitignore_alternatives_pass(project, text):
    assert_outcome(project(CHAPTER).write(GITIGNORE, text).sweep("ex5"), Outcome.PASS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("instance/\n__pycache__/\n", "Is there a line `.env`"),
        (".env\n__pycache__/\n", "Is there a line `instance/`"),
        ("instance/config.py\n.env\n", "`instance/"),
        (".env*\ninstance/\n", "`.env.example` is not ignored"),
        (".env\ninstance/\nconfig.py\n", "`tickethub/config.py` is not ignored"),
        ("*\n", "`.env.example` is not ignored"),
        ('".env"\ninstance/\n', "Is there a line `.env`"),
        (".env\ninstance/\n", "Is there a line `__pycache__/`"),  # Python's leftovers tracked
        (".env\ninstance/\n/__pycache__/\n", "`tickethub/__pycache__/config.cpython-312.pyc` is ignored"),
    ],
)
def test_gitignore_wrong_answers_fail(project, text, expected):
    assert_rejected(project(CHAPTER).write(GITIGNORE, text).sweep("ex5"), expected)


MATCHER_CASES = [
    ".env\ninstance/\n",
    "/.env\n/instance\n",
    ".env*\n!.env.example\n",
    "instance/*\n!instance/keep.py\n",
    "instance/\n!instance/keep.py\n",
    "**/instance/\n*.py[co]\n",
    "tickethub/**\n!tickethub/config.py\n",
    "tickethub/**/routes.py\n",
    "config.py\n# a comment\n\\#literal\n",
    "*.py\n!wsgi.py\n",
    "?env\n[.]env.*\n",
]
PATHS = [
    ".env", ".env.example", "#literal", "wsgi.py", "instance/config.py", "instance/keep.py",
    "tickethub/config.py", "tickethub/events/routes.py", "tickethub/instance/x.pyc", "a.pyc",
]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("text", MATCHER_CASES)
def test_gitignore_matcher_agrees_with_git(tmp_path, text):
    """Does the check's pattern matcher give the same answers as Git itself?"""
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null", "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", "--template=", str(tmp_path)], check=True, env=env)
    (tmp_path / ".gitignore").write_text(text)
    done = subprocess.run(
        ["git", "-c", "core.excludesFile=", "check-ignore", "--no-index", "--verbose", "--non-matching", "--stdin"],
        cwd=tmp_path, input="\n".join(PATHS) + "\n", capture_output=True, text=True, env=env,
    )
    by_git = {}
    for line in done.stdout.splitlines():
        source, path = line.split("\t")
        pattern = source.split(":", 2)[2] if source != "::" else ""
        by_git[path] = bool(pattern) and not pattern.startswith("!")
    rules = gitignore_rules(text)
    assert {p: gitignored(rules, p) for p in PATHS} == by_git


# --- one wrong answer per stated requirement that the check before the port let through -------------

@pytest.mark.parametrize(
    ("path", "exercise", "old", "new", "expected"),
    [
        (CONFIG, "ex1", '    SITE_NAME = "TicketHub"\n', '    SITE_NAME = "TicketHub"\n    SESSION_COOKIE_SECURE = True\n',
         "does not set `SESSION_COOKIE_SECURE` on"),  # HTTPS-only cookies in production only
        (CONFIG, "ex1", DEV_DOC, DEV_DOC + "\n    TESTING = True\n",
         "`DevelopmentConfig.TESTING` is `False`"),  # only TestingConfig sets TESTING
        (STARTUP, "ex2", "len(key) < MIN_SECRET_KEY_LENGTH", "len(key) < MIN_SECRET_KEY_LENGTH - 1",
         "(31 characters)"),  # shorter than 32, always at the boundary
        (STARTUP, "ex2", "isinstance(key, (str, bytes))", "isinstance(key, str)", "`bytes` key"),  # text: str or bytes
        (STARTUP, "ex2", "not isinstance(key, (str, bytes))", "key is None or type(key) in (int, float)",
         "a `bool`"),  # any key that is not text
        (STARTUP, "ex2", '    key = config.get("SECRET_KEY")\n',
         '    key = config.get("SECRET_KEY")\n    if isinstance(key, int):\n        raise ConfigError("not text")\n',
         "a message that names `TICKETHUB_SECRET_KEY`"),  # every refusal says what to do
        (INIT, "ex3", TEST_CONFIG + "    verify_config(app.config, name)",
         "    verify_config(app.config, name)\n" + TEST_CONFIG,
         "`test_config` included"),  # verify_config after every layer, test_config too
        (INIT, "ex3", "    app.register_blueprint(warmup.bp)\n", "", "`warmup.bp`"),  # chapter 01's registrations
        (INIT, "ex3", '    app.register_blueprint(venues.bp, url_prefix="/api/venues")\n', "", "`venues.bp`"),
    ],
)
def test_each_requirement_is_checked(project, path, exercise, old, new, expected):
    """Does every stated requirement fail on its own, on every seed?"""
    assert_rejected(project(CHAPTER).edit(path, old, new).sweep(exercise), expected)
