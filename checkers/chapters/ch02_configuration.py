"""Checks for chapter 02: configuration (config classes, environment, instance folder, .env)."""
from __future__ import annotations

import os
import re
import runpy
from contextlib import contextmanager
from unittest.mock import patch

import dotenv  # noqa: F401  (imported before the check server forks, so wsgi.py loads fast)
from flask import Flask

from ..engine.checking import raised, show as _show_value
from ..notebook.api import Chapter

chapter = Chapter(__name__, "Configuration", legacy=True)

ENVIRONMENTS = ("development", "testing", "production")
CLASSES = {"development": "DevelopmentConfig", "testing": "TestingConfig", "production": "ProductionConfig"}
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_hex())"'

ex1 = chapter.exercise(
    "Config classes per environment",
    hints=[
        "Put every setting in `Config` as an UPPERCASE class attribute (`app.config.from_object()` "
        "ignores lowercase names). Each subclass then changes only what differs for its environment.",
        "`class DevelopmentConfig(Config):` inherits everything from `Config`; inside it, `DEBUG = True` "
        "is all it needs. `TestingConfig` sets `TESTING = True`. `ProductionConfig` sets "
        "`SECRET_KEY = None` (the real key comes from the environment) and `SESSION_COOKIE_SECURE = True`.",
        "`Config` holds `SECRET_KEY = \"dev\"`, `DEBUG = False`, `TESTING = False`, "
        "`MAX_TICKETS_PER_ORDER = 10` and `SITE_NAME = \"TicketHub\"`. At the end of the file: "
        "`configs = {\"development\": DevelopmentConfig, \"testing\": TestingConfig, "
        "\"production\": ProductionConfig}` (the classes themselves, not instances or strings).",
    ],
)

ex2 = chapter.exercise(
    "Refuse to start without a real secret",
    hints=[
        "Return early when `config.get(\"DEBUG\")` or `config.get(\"TESTING\")` is true. Otherwise "
        "look at `config.get(\"SECRET_KEY\")` (`.get`, because the key may be missing) and "
        "`raise ConfigError(...)` when it is not a real secret.",
        "A key is not a real secret when it is missing or empty (`not key`), when it is not text, "
        "when it is `\"dev\"`, or when `len(key) < MIN_SECRET_KEY_LENGTH`. One `if` with `or` covers "
        "them all; test `isinstance(key, (str, bytes))` before calling `len()`.",
        "The message is for the person deploying the app at 3 a.m.: say what is wrong, which variable "
        "to set, and how to make a value, e.g. `raise ConfigError(\"SECRET_KEY is missing or too weak. "
        "Set TICKETHUB_SECRET_KEY to a random value of at least 32 characters; make one with: "
        f"{MAKE_A_KEY}\")`.",
    ],
)

ex3 = chapter.exercise(
    "Load configuration in layers in `create_app()`",
    hints=[
        "Load from the weakest source to the strongest, so each one overrides the ones before: "
        "`app.config.from_object(configs[name])`, then `app.config.from_pyfile(\"config.py\", silent=True)`, "
        "then `app.config.from_prefixed_env(\"TICKETHUB\")`, then `test_config`. Check the result last.",
        "`name = os.environ.get(\"TICKETHUB_ENV\", \"development\")`. Before looking it up, "
        "`if name not in configs: raise ValueError(...)` with a message that lists `sorted(configs)`. "
        "`silent=True` makes a missing `instance/config.py` fine; `instance_relative_config=True` (already "
        "in the `Flask(...)` line) makes `from_pyfile` look in the instance folder.",
        "After the layers: `if test_config is not None: app.config.from_mapping(test_config)`, then "
        "`verify_config(app.config)`: it must come after every layer, because the real key arrives "
        "from the environment (or the instance file), not from the class.",
    ],
    requires=[ex1, ex2],
)

ex4 = chapter.exercise(
    "`wsgi.py`: load `.env`, then build the app",
    hints=[
        "`wsgi.py` is four lines: import `load_dotenv` from `dotenv`, call it, import `create_app` "
        "from `tickethub`, and assign `app = create_app()`.",
        "Order matters: `create_app()` reads `TICKETHUB_*` variables when it runs, so `load_dotenv()` "
        "must run before it. And leave `override` at its default (`False`): a variable set in the real "
        "environment (by your shell, Docker or your host) must win over the `.env` file.",
        "Four lines, in this order: `from dotenv import load_dotenv`, `load_dotenv()`, "
        "`from tickethub import create_app`, `app = create_app()`.",
    ],
    requires=[ex3],
)

ex5 = chapter.exercise(
    "Keep secrets and local files out of Git",
    hints=[
        "A `.gitignore` line names what Git should not track: `.env` matches a file called `.env` in "
        "any folder; a line ending in `/` such as `instance/` matches a folder and everything in it.",
        "Beware of wide patterns: `.env*` also hides `.env.example`, which *should* be committed so "
        "others know which variables to set; `config.py` hides `tickethub/config.py` too.",
        "Three lines do it: `.env`, `instance/` and `__pycache__/` (plus `.venv/` if you keep a "
        "virtual environment in the project).",
    ],
)


# --- helpers ---------------------------------------------------------------------------------


def show(value) -> str:
    """A learner's value, safely, without memory addresses (feedback must be deterministic)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", _show_value(value))



@contextmanager
def _environment(values: dict[str, str] | None = None):
    """Run the block with exactly these TICKETHUB_* variables; restore everything after."""
    with patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith("TICKETHUB_")]:
            del os.environ[name]
        os.environ.pop("PYTHON_DOTENV_DISABLED", None)
        os.environ.update(values or {})
        yield


def _secret(t, length: int = 64) -> str:
    """A random hex key that stays text under `from_prefixed_env`'s JSON parsing."""
    while True:
        key = "".join(t.rng.choice("0123456789abcdef") for _ in range(length))
        if any(c in "abcdf" for c in key):
            return key


def _instance_file(t, text: str | None) -> None:
    path = t.project / "instance" / "config.py"
    if text is None:
        if path.exists():
            path.unlink()
    else:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no exception"
    text = str(error).strip().splitlines()
    return f"`{type(error).__name__}: {text[0][:150]}`" if text else f"`{type(error).__name__}`"


# --- exercise 1: tickethub/config.py -------------------------------------------------------------


@ex1.step("`tickethub/config.py` defines `Config` and three subclasses of it")
def _classes(t):
    config = t.module("tickethub.config")
    base = getattr(config, "Config", None)
    t.require(isinstance(base, type), "a class `Config` in `tickethub/config.py`", f"`Config` is {show(base)}",
              "Did you keep the line `class Config:`?")
    for name in CLASSES.values():
        cls = getattr(config, name, None)
        t.require(
            isinstance(cls, type) and issubclass(cls, base),
            f"a class `{name}(Config)`",
            lambda: f"`{name}` is {show(cls)}" if not isinstance(cls, type)
            else f"`{name}` does not inherit from `Config` (its bases are `{', '.join(b.__name__ for b in cls.__bases__)}`)",
            f"Did you declare it as `class {name}(Config):`, so that it inherits the shared settings?",
        )
    t.config = config


def _value(cls, name):
    return getattr(cls, name, "<missing>")


@ex1.step("`Config` holds the shared defaults: `SECRET_KEY`, `DEBUG`, `TESTING`, `MAX_TICKETS_PER_ORDER`, `SITE_NAME`")
def _base_values(t):
    base = t.config.Config
    wanted = {"SECRET_KEY": "dev", "DEBUG": False, "TESTING": False, "MAX_TICKETS_PER_ORDER": 10, "SITE_NAME": "TicketHub"}
    for name, value in wanted.items():
        seen = _value(base, name)
        t.require(
            type(seen) is type(value) and seen == value,
            f"`Config.{name} = {value!r}`",
            f"`Config.{name}` is {show(seen)}",
            "Is the name spelled in UPPERCASE, with a value of the right type (`False`, not `\"False\"`; `10`, not `\"10\"`)?",
        )


@ex1.step("`DevelopmentConfig` turns `DEBUG` on, only `TestingConfig` sets `TESTING`, production has neither")
def _environment_values(t):
    wanted = {
        "DevelopmentConfig": {"DEBUG": True, "TESTING": False},
        "TestingConfig": {"DEBUG": False, "TESTING": True},
        "ProductionConfig": {"DEBUG": False, "TESTING": False},
    }
    for cls_name, values in wanted.items():
        cls = getattr(t.config, cls_name)
        for name, value in values.items():
            seen = _value(cls, name)
            t.require(
                seen is value,
                f"`{cls_name}.{name}` is `{value}`",
                f"`{cls_name}.{name}` is {show(seen)}",
                f"Does `{cls_name}` inherit from `Config` directly, and set only what differs for its environment?"
                + (" (`DEBUG` in production would let anyone run code through the debugger.)"
                   if cls_name == "ProductionConfig" else ""),
            )


@ex1.step("`ProductionConfig` keeps no secret in code and sends cookies over HTTPS only")
def _production(t):
    production = t.config.ProductionConfig
    key = _value(production, "SECRET_KEY")
    t.require(
        key is None or key == "",
        "`ProductionConfig.SECRET_KEY = None`: the real key must come from the environment",
        f"`ProductionConfig.SECRET_KEY` is {show(key)}",
        "Did you override `SECRET_KEY` in `ProductionConfig`? Without it, production inherits `\"dev\"`; "
        "and a real key written here would be in every copy of your code.",
    )
    secure = _value(production, "SESSION_COOKIE_SECURE")
    t.require(secure is True, "`ProductionConfig.SESSION_COOKIE_SECURE = True`",
              f"`ProductionConfig.SESSION_COOKIE_SECURE` is {show(secure)}",
              "Did you add `SESSION_COOKIE_SECURE = True` to `ProductionConfig`?")


@ex1.step("`configs` maps `\"development\"`, `\"testing\"` and `\"production\"` to their classes")
def _mapping(t):
    configs = getattr(t.config, "configs", None)
    t.require(isinstance(configs, dict), "a dict named `configs`", f"`configs` is {show(configs)}",
              "Did you replace `configs = ...` with a dict literal?")
    t.require(
        sorted(configs) == sorted(ENVIRONMENTS),
        "exactly the keys `\"development\"`, `\"production\"`, `\"testing\"`",
        f"the keys {show(sorted(configs, key=str))}",
        "Are the keys lowercase strings, spelled as `TICKETHUB_ENV` will spell them?",
    )
    for name, cls_name in CLASSES.items():
        t.require(
            configs[name] is getattr(t.config, cls_name),
            f"`configs[\"{name}\"]` is the class `{cls_name}`",
            f"`configs[\"{name}\"]` is {show(configs[name])}",
            f"Did you map `\"{name}\"` to the class itself (`{cls_name}`, no parentheses, no quotes)?",
        )


# --- exercise 2: tickethub/startup.py -----------------------------------------------------------


def _production_like(key="<missing>") -> dict:
    config = {"DEBUG": False, "TESTING": False, "ENV": "production"}
    if key != "<missing>":
        config["SECRET_KEY"] = key
    return config


def _verify(t, config):
    return raised(lambda: t.startup.verify_config(config))


@ex2.step("`tickethub/startup.py` defines `ConfigError` (a `RuntimeError`) and `verify_config(config)`")
def _startup(t):
    startup = t.module("tickethub.startup")
    error = getattr(startup, "ConfigError", None)
    t.require(isinstance(error, type) and issubclass(error, RuntimeError),
              "a class `ConfigError(RuntimeError)`", f"`ConfigError` is {show(error)}",
              "Did you keep the given `class ConfigError(RuntimeError):`?")
    t.require(callable(getattr(startup, "verify_config", None)), "a function `verify_config(config)`",
              f"`verify_config` is {show(getattr(startup, 'verify_config', None))}",
              "Did you keep the line `def verify_config(config):`?")
    t.startup = startup


@ex2.step("`verify_config` raises `ConfigError` when a production config has no `SECRET_KEY`")
def _no_key(t):
    for key, what in (("<missing>", "no `SECRET_KEY` at all"), (None, "`SECRET_KEY = None`")):
        error = _verify(t, _production_like(key))
        t.require(
            isinstance(error, t.startup.ConfigError),
            f"`ConfigError` for `{_production_like(key)}` ({what})",
            f"{_describe(error)}",
            "Do you return early only when `DEBUG` or `TESTING` is true, read the key with "
            "`config.get(\"SECRET_KEY\")` (it may be missing), and `raise ConfigError(...)` when it is missing?"
            if error is None or isinstance(error, KeyError)
            else "Do you raise `ConfigError` (not another exception) when the key is missing?",
        )


@ex2.step("`verify_config` raises `ConfigError` for an empty, `\"dev\"`, short or non-text `SECRET_KEY`")
def _weak_keys(t):
    short = _secret(t, t.rng.randrange(8, 32))
    for key in ("", "dev", short, t.rng.randrange(10**40, 10**41)):
        error = _verify(t, _production_like(key))
        t.require(
            isinstance(error, t.startup.ConfigError),
            f"`ConfigError` when `SECRET_KEY` is {show(key)}"
            + (f" ({len(key)} characters)" if isinstance(key, str) and len(key) > 3 else "")
            + (" (a number: what `from_prefixed_env` makes of `TICKETHUB_SECRET_KEY=123…`)" if isinstance(key, int) else ""),
            f"{_describe(error)}",
            "Do you reject a key that is empty, `\"dev\"`, not text (`isinstance(key, (str, bytes))`) or "
            "shorter than `MIN_SECRET_KEY_LENGTH` (32)? Test the type before you call `len()`.",
        )


@ex2.step("the `ConfigError` names `TICKETHUB_SECRET_KEY` and says how to make a key")
def _message(t):
    error = _verify(t, _production_like(None))
    message = str(error)
    t.require(
        "TICKETHUB_SECRET_KEY" in message and "secrets.token_" in message,
        f"a message that names `TICKETHUB_SECRET_KEY` and shows how to make a key: `{MAKE_A_KEY}`",
        f"the message `{message}`",
        "Imagine reading it during a failed deployment: does it say which variable to set, and the "
        "command that makes a good value?",
    )


@ex2.step("`verify_config` accepts a random key of 32 characters or more")
def _good_keys(t):
    for key in (_secret(t, 64), _secret(t, 32)):
        error = _verify(t, _production_like(key))
        t.require(error is None, f"no exception for a random {len(key)}-character key `{key}`",
                  f"{_describe(error)}",
                  "Is the length test `len(key) < 32` (so that exactly 32 characters is fine)?")


@ex2.step("`verify_config` lets `DEBUG` and `TESTING` apps run without a real key")
def _dev_and_test(t):
    for config in ({"DEBUG": True, "TESTING": False, "SECRET_KEY": None},
                   {"DEBUG": False, "TESTING": True, "SECRET_KEY": "dev"},
                   {"DEBUG": True, "TESTING": False}):
        error = _verify(t, config)
        t.require(error is None, f"no exception for `{config}`", f"{_describe(error)}",
                  "Do you `return` before checking the key when `config.get(\"DEBUG\")` or "
                  "`config.get(\"TESTING\")` is true? Developers and tests should not need a real secret.")


# --- exercise 3: tickethub/__init__.py ------------------------------------------------------------


def _create(t, test_config=None, env=None):
    """Build the learner's app with exactly these TICKETHUB_* variables."""
    with _environment(env):
        try:
            return t.tickethub.create_app() if test_config is None else t.tickethub.create_app(test_config)
        except OSError as error:
            if "config.py" not in str(error):
                raise
            t.fail("`create_app()` works when there is no `instance/config.py`",
                   f"`{type(error).__name__}` about a missing `config.py`",
                   "Did you pass `silent=True` to `app.config.from_pyfile(\"config.py\", silent=True)`? "
                   "Most machines (and every test) have no instance file.")


def _config_error(t):
    return t.module("tickethub.startup").ConfigError


@ex3.step("`create_app()` with no `TICKETHUB_ENV` and no instance file builds a development app")
def _default(t):
    _instance_file(t, None)
    t.tickethub = t.module("tickethub")
    t.configs = t.module("tickethub.config").configs
    try:
        app = _create(t)
    except _config_error(t) as error:
        t.fail("a development app (`DEBUG` on) when `TICKETHUB_ENV` is not set", f"`ConfigError: {error}`",
               "Is the default of `os.environ.get(\"TICKETHUB_ENV\", ...)` `\"development\"`, and do you "
               "load that class with `app.config.from_object(configs[name])` before `verify_config(...)`?")
    t.require(isinstance(app, Flask), "`create_app()` returns a Flask app", f"it returned {show(app)}",
              "Did you keep `return app` at the end of `create_app()`?")
    debug, testing = app.config.get("DEBUG"), app.config.get("TESTING")
    t.require(
        debug is True and testing is False,
        "`DEBUG` is `True` and `TESTING` is `False` (the `DevelopmentConfig` values)",
        f"`DEBUG` is {show(debug)} and `TESTING` is {show(testing)}",
        "Does `TICKETHUB_ENV` default to `\"development\"`, and do you load the class with "
        "`app.config.from_object(configs[name])`?",
    )
    wanted = t.configs["development"].MAX_TICKETS_PER_ORDER
    seen = app.config.get("MAX_TICKETS_PER_ORDER")
    t.require(seen == wanted, f"`MAX_TICKETS_PER_ORDER` is {wanted}, from `Config`",
              f"`MAX_TICKETS_PER_ORDER` is {show(seen)}",
              "Do you load the class with `app.config.from_object(configs[name])`?")


@ex3.step("`TICKETHUB_ENV=testing` selects `TestingConfig`")
def _testing(t):
    app = _create(t, env={"TICKETHUB_ENV": "testing"})
    debug, testing = app.config.get("DEBUG"), app.config.get("TESTING")
    t.require(
        testing is True and debug is False,
        "`TESTING` is `True` and `DEBUG` is `False` when `TICKETHUB_ENV=testing`",
        f"`TESTING` is {show(testing)} and `DEBUG` is {show(debug)}",
        "Do you read the name with `os.environ.get(\"TICKETHUB_ENV\", \"development\")` and load "
        "`configs[name]`?",
    )


@ex3.step("an unknown `TICKETHUB_ENV` raises `ValueError` listing the valid names")
def _unknown(t):
    name = t.word()
    error = raised(lambda: _create(t, env={"TICKETHUB_ENV": name}))
    t.require(
        isinstance(error, ValueError),
        f"`ValueError` when `TICKETHUB_ENV={name}`",
        f"{_describe(error)}" + (": `create_app()` returned an app" if error is None else ""),
        "Do you check `if name not in configs:` and `raise ValueError(...)` before the lookup? "
        "(A bare `configs[name]` raises a `KeyError` that does not say what would be right.)",
    )
    message = str(error)
    t.require(
        all(env in message for env in ENVIRONMENTS),
        "a message that lists `development`, `production` and `testing`",
        f"the message `{message}`",
        "Does the message include the valid names, e.g. `\", \".join(sorted(configs))`?",
    )


@ex3.step("`instance/config.py` overrides the class defaults")
def _instance(t):
    limit, site = t.rng.randrange(11, 99), f"TicketHub {t.word().title()}"
    _instance_file(t, f"MAX_TICKETS_PER_ORDER = {limit}\nSITE_NAME = {site!r}\n")
    app = _create(t)
    seen = (app.config.get("MAX_TICKETS_PER_ORDER"), app.config.get("SITE_NAME"))
    t.require(
        seen == (limit, site),
        f"`MAX_TICKETS_PER_ORDER` {limit} and `SITE_NAME` {site!r}, from `instance/config.py`",
        f"{show(seen[0])} and {show(seen[1])}",
        "Do you call `app.config.from_pyfile(\"config.py\", silent=True)` after `from_object(...)`, "
        "with the app created as `Flask(__name__, instance_relative_config=True)` so that the file is "
        "looked for in the instance folder?",
    )
    t.limit, t.site = limit, site


@ex3.step("`TICKETHUB_*` environment variables beat `instance/config.py`, parsed as JSON")
def _prefixed(t):
    limit, site, flag = t.rng.randrange(100, 999), t.word("Hub "), t.word().upper()
    env = {"TICKETHUB_MAX_TICKETS_PER_ORDER": str(limit), "TICKETHUB_SITE_NAME": site, f"TICKETHUB_FEATURES__{flag}": "true"}
    app = _create(t, env=env)
    seen = app.config.get("MAX_TICKETS_PER_ORDER")
    t.require(
        seen != t.limit,
        f"`MAX_TICKETS_PER_ORDER` {limit} from `TICKETHUB_MAX_TICKETS_PER_ORDER={limit}` "
        f"(the instance file says {t.limit})",
        f"{show(seen)}, the instance file's value",
        "Do you call `app.config.from_prefixed_env(\"TICKETHUB\")`, and after `from_pyfile(...)`? "
        "Later layers override earlier ones.",
    )
    t.require(
        type(seen) is int and seen == limit,
        f"`MAX_TICKETS_PER_ORDER` is the number {limit} (an `int`)",
        f"{show(seen)} (a `{type(seen).__name__}`)",
        "Did you use `app.config.from_prefixed_env(\"TICKETHUB\")`? It parses each value as JSON, so "
        "`\"12\"` becomes `12`; `os.environ` alone only ever gives text.",
    )
    t.require(app.config.get("SITE_NAME") == site, f"`SITE_NAME` {site!r} from `TICKETHUB_SITE_NAME`",
              f"`SITE_NAME` is {show(app.config.get('SITE_NAME'))}",
              "Do you load every `TICKETHUB_*` variable with `from_prefixed_env(\"TICKETHUB\")`?")
    features = app.config.get("FEATURES")
    t.require(
        isinstance(features, dict) and features.get(flag) is True,
        f"`app.config[\"FEATURES\"][\"{flag}\"]` is `True` from `TICKETHUB_FEATURES__{flag}=true`",
        f"`FEATURES` is {show(features)}",
        "Did you use `app.config.from_prefixed_env(\"TICKETHUB\")`? It turns `__` into nested keys.",
    )
    t.env = env


@ex3.step("`test_config` beats every other layer")
def _test_config(t):
    limit, site = t.rng.randrange(1000, 9999), t.word("Test ")
    app = _create(t, {"MAX_TICKETS_PER_ORDER": limit, "SITE_NAME": site}, env=t.env)
    seen = (app.config.get("MAX_TICKETS_PER_ORDER"), app.config.get("SITE_NAME"))
    t.require(
        seen == (limit, site),
        f"`create_app({{\"MAX_TICKETS_PER_ORDER\": {limit}, \"SITE_NAME\": {site!r}}})` uses those values, "
        "even with an instance file and `TICKETHUB_*` variables set",
        f"{show(seen[0])} and {show(seen[1])}",
        "Do you apply `test_config` (with `app.config.from_mapping(test_config)`) after "
        "`from_prefixed_env(...)`? A test must always get the settings it asks for.",
    )
    _instance_file(t, None)


@ex3.step("production refuses to start without a real `SECRET_KEY`")
def _production_refuses(t):
    ConfigError = _config_error(t)
    for env, what in (
        ({"TICKETHUB_ENV": "production"}, "no `TICKETHUB_SECRET_KEY`"),
        ({"TICKETHUB_ENV": "production", "TICKETHUB_SECRET_KEY": "dev"}, "`TICKETHUB_SECRET_KEY=dev`"),
        ({"TICKETHUB_ENV": "production", "TICKETHUB_SECRET_KEY": _secret(t, 20)}, "a 20-character key"),
    ):
        error = raised(lambda: _create(t, env=env))
        t.require(
            isinstance(error, ConfigError) and "TICKETHUB_SECRET_KEY" in str(error),
            f"`create_app()` raises `ConfigError` with `TICKETHUB_ENV=production` and {what}",
            f"{_describe(error)}" + (": `create_app()` returned an app" if error is None else ""),
            "Does `create_app()` call `verify_config(app.config)` once every layer is loaded?",
        )


@ex3.step("production starts with a real key from `TICKETHUB_SECRET_KEY` or `instance/config.py`")
def _production_starts(t):
    ConfigError = _config_error(t)
    key = _secret(t)
    try:
        app = _create(t, env={"TICKETHUB_ENV": "production", "TICKETHUB_SECRET_KEY": key})
    except ConfigError as error:
        t.fail(f"a production app with `TICKETHUB_SECRET_KEY={key}`", f"`ConfigError: {error}`",
               "Do you call `verify_config(app.config)` after `from_prefixed_env(\"TICKETHUB\")`? "
               "The key only arrives with the environment layer.")
    seen = (app.config.get("SECRET_KEY"), app.config.get("DEBUG"), app.config.get("SESSION_COOKIE_SECURE"))
    t.require(
        seen == (key, False, True),
        f"`SECRET_KEY` `{key}`, `DEBUG` `False`, `SESSION_COOKIE_SECURE` `True`",
        f"`SECRET_KEY` {show(seen[0])}, `DEBUG` {show(seen[1])}, `SESSION_COOKIE_SECURE` {show(seen[2])}",
        "Does `TICKETHUB_ENV=production` load `ProductionConfig`, with the environment layer after it?",
    )
    key = _secret(t)
    _instance_file(t, f"SECRET_KEY = {key!r}\n")
    try:
        app = _create(t, env={"TICKETHUB_ENV": "production"})
    except ConfigError as error:
        t.fail("a production app with `SECRET_KEY` set in `instance/config.py`", f"`ConfigError: {error}`",
               "Do you call `verify_config(app.config)` after every layer, including `from_pyfile(...)`?")
    finally:
        _instance_file(t, None)
    t.require(app.config.get("SECRET_KEY") == key, f"`SECRET_KEY` `{key}` from `instance/config.py`",
              f"`SECRET_KEY` is {show(app.config.get('SECRET_KEY'))}",
              "Do you load `instance/config.py` after the class?")


@ex3.step("the events API from chapter 01 still works")
def _api(t):
    client = _create(t, {"TESTING": True}).test_client()
    event = {"name": t.word("Concert ").title(), "capacity": t.rng.randrange(10, 500)}
    created = t.json(client.post("/api/events/", json=event), 201, "the new event",
                     "Did you keep the blueprint registrations from chapter 01 in `create_app()`?")
    t.require(isinstance(created, dict) and created.get("name") == event["name"],
              f"the created event, named {event['name']!r}", f"`{show(created)}`",
              "Did you keep `events.bp` registered with `url_prefix=\"/api/events\"`?")
    t.json(client.get(f"/api/events/{created['id']}"), 200, "the event",
           "Did you keep `events.bp` registered with `url_prefix=\"/api/events\"`?")
    t.json(client.get("/api/venues/"), 200, "the list of venues",
           "Did you keep `venues.bp` registered with `url_prefix=\"/api/venues\"`?")
    missing = t.rng.randrange(10**5, 10**6)
    response = client.get(f"/api/events/{missing}")
    t.require(
        response.status_code == 404 and response.is_json,
        f"`GET /api/events/{missing}` (no such event) answers 404 with a JSON error",
        f"{response.status_code} with `Content-Type: {response.content_type}`",
        "Did you keep `errors.register_error_handlers(app)` in `create_app()`?",
    )


# --- exercise 4: wsgi.py ----------------------------------------------------------------------------


def _run_wsgi(t):
    """Execute the learner's wsgi.py as a server would, and return its `app`."""
    path = t.project / "wsgi.py"
    t.require(path.exists(), "a file `wsgi.py` at the project's top level, beside `tickethub/`",
              "there is no `wsgi.py`", "Did you run the exercise cell that writes `wsgi.py`?")
    namespace = runpy.run_path(str(path), run_name="wsgi")
    app = namespace.get("app")
    t.require(isinstance(app, Flask), "`wsgi.py` defines `app`, the Flask app from `create_app()`",
              f"`app` is {show(app)}", "Did you end `wsgi.py` with `app = create_app()`?")
    return app


@ex4.step("`wsgi.py` loads `.env` before it calls `create_app()`")
def _dotenv(t):
    t.key, t.env_site, t.real_site = _secret(t), t.word("Hub "), t.word("Hub ")
    (t.project / ".env").write_text(
        "# written by the check\nTICKETHUB_ENV=production\n"
        f"TICKETHUB_SECRET_KEY={t.key}\nTICKETHUB_SITE_NAME=\"{t.env_site}\"\n",
        encoding="utf-8",
    )
    with _environment({"TICKETHUB_SITE_NAME": t.real_site}):
        t.app = _run_wsgi(t)
    key, debug = t.app.config.get("SECRET_KEY"), t.app.config.get("DEBUG")
    t.require(
        key == t.key and debug is False,
        f"a production app whose `SECRET_KEY` is `{t.key}`, as set in `.env` "
        "(with `TICKETHUB_ENV=production` and that key)",
        f"`SECRET_KEY` {show(key)} and `DEBUG` {show(debug)}",
        "Do you call `load_dotenv()` before `create_app()`? `create_app()` reads the environment when "
        "it runs, so variables loaded after it come too late.",
    )


@ex4.step("a variable set in the real environment beats the same one in `.env`")
def _real_wins(t):
    site = t.app.config.get("SITE_NAME")
    t.require(
        site == t.real_site,
        f"`SITE_NAME` {t.real_site!r} from the real environment (`.env` says {t.env_site!r})",
        f"`SITE_NAME` is {show(site)}",
        "Did you call `load_dotenv(override=True)`? Leave `override` at its default (`False`): the "
        "real environment, set by whoever runs the app, must win over a file.",
    )


@ex4.step("`wsgi.py` also works with no `.env` file, from the real environment alone")
def _no_dotenv(t):
    (t.project / ".env").unlink()
    key = _secret(t)
    with _environment({"TICKETHUB_ENV": "production", "TICKETHUB_SECRET_KEY": key}):
        app = _run_wsgi(t)
    t.require(
        app.config.get("SECRET_KEY") == key,
        f"`SECRET_KEY` `{key}` from the real environment, with no `.env` file",
        f"`SECRET_KEY` is {show(app.config.get('SECRET_KEY'))}",
        "Do you build the app with `create_app()` (which reads the environment), rather than reading "
        "`.env` yourself? Servers usually have no `.env` file at all.",
    )


# --- exercise 5: .gitignore ------------------------------------------------------------------------------


def gitignore_rules(text: str) -> list[tuple[bool, bool, bool, re.Pattern]]:
    """Parse .gitignore text into (negated, directories only, anchored, regex) rules."""
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip(" ") if not raw.endswith("\\ ") else raw
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated or line.startswith("\\"):
            line = line[1:]
        directory = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        rules.append((negated, directory, anchored, re.compile(_glob(line.lstrip("/")))))
    return rules


def _glob(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern[i] == "*":
            out.append("[^/]*")
            while i < len(pattern) and pattern[i] == "*":
                i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body[0] in "!^" else body).replace("\\", "\\\\") + "]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out) + r"\Z"


def gitignored(rules, path: str) -> bool:
    """Would Git ignore the file at `path` (relative, with `/`) under these rules?"""
    parts = path.split("/")
    for end in range(1, len(parts)):  # a file in an ignored folder cannot be re-included
        if _matches(rules, "/".join(parts[:end]), True):
            return True
    return _matches(rules, path, False)


def _matches(rules, path: str, is_dir: bool) -> bool:
    ignored = False
    for negated, directory, anchored, regex in rules:
        if directory and not is_dir:
            continue
        if regex.match(path if anchored else path.rsplit("/", 1)[-1]):
            ignored = not negated
    return ignored


@ex5.step("`.gitignore` makes Git ignore `.env`")
def _ignores_env(t):
    path = t.project / ".gitignore"
    t.require(path.exists(), "a `.gitignore` file at the project's top level", "there is no `.gitignore`",
              "Did you run the exercise cell that writes `.gitignore`?")
    t.rules = gitignore_rules(path.read_text(encoding="utf-8"))
    t.require(gitignored(t.rules, ".env"), "`.env` is ignored", "Git would track `.env`, and your secrets with it",
              "Is there a line `.env` (exactly: no spaces, no quotes)?")


@ex5.step("`.gitignore` makes Git ignore everything in `instance/`")
def _ignores_instance(t):
    for path in ("instance/config.py", f"instance/{t.word()}.sqlite"):
        t.require(gitignored(t.rules, path), f"`{path}` is ignored", f"Git would track `{path}`",
                  "Is there a line `instance/`, which ignores the folder and everything in it? Later "
                  "chapters keep the database there too.")


@ex5.step("`.gitignore` keeps `.env.example`, `wsgi.py` and the `tickethub` package in Git")
def _keeps_code(t):
    for path in (".env.example", ".gitignore", "wsgi.py", "tickethub/__init__.py", "tickethub/config.py",
                 "tickethub/startup.py", "tickethub/events/routes.py"):
        t.require(
            not gitignored(t.rules, path),
            f"`{path}` is not ignored: it belongs in version control",
            f"Git would ignore `{path}`",
            "Is one of your patterns too wide? `.env*` also matches `.env.example`, `config.py` also "
            "matches `tickethub/config.py`, and `*.py` matches all your code.",
        )


setup, reset = chapter.setup, chapter.reset
