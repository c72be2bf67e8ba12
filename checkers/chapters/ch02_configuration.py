"""Checks for chapter 02: configuration (config classes, environment, instance folder, .env)."""
from __future__ import annotations

import fnmatch
import os
import runpy
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import dotenv  # noqa: F401  (imported before the check server forks, so wsgi.py loads fast)
from flask import Flask

from ..engine.judge import Call, LearnerError, Remote, show, strictly_equal
from ..engine.learner import probe
from ..notebook.api import Chapter

chapter = Chapter(__name__, "Configuration")

CLASSES = ("Config", "DevelopmentConfig", "TestingConfig", "ProductionConfig")
ENVIRONMENTS = ("development", "testing", "production")  # in the order of CLASSES[1:]
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_hex())"'
INSTANCE = "instance/config.py"
DEBUG_FROM = "the server's start (`flask run --debug`, `FLASK_DEBUG=1`)"
RELAXED = ("development", "testing")  # the only environments that may run with the tutorial's key
KEYS = ("DEBUG", "TESTING", "SECRET_KEY", "MAX_TICKETS_PER_ORDER", "SITE_NAME", "FEATURES", "SESSION_COOKIE_SECURE")
ABSENT = "\0absent"  # what `t.get` answers for a name that is not there

ex1 = chapter.exercise("Config classes per environment", hints=[
    "Put every setting in `Config` as an UPPERCASE class attribute (`app.config.from_object()` ignores lowercase "
    "names). Each subclass then changes only what differs for its environment.",
    "`class DevelopmentConfig(Config):` inherits everything from `Config`; a docstring is all it needs for now. "
    "`TestingConfig` sets `TESTING = True`. No class sets `DEBUG`: debug mode comes from " + DEBUG_FROM + ". "
    "`ProductionConfig` sets `SECRET_KEY = None` (the real key comes from the "
    "environment) and `SESSION_COOKIE_SECURE = True`.",
    "`Config` holds `SECRET_KEY = \"dev\"`, `TESTING = False`, `MAX_TICKETS_PER_ORDER = 10` and "
    "`SITE_NAME = \"TicketHub\"`. At the end of the file: `configs = {\"development\": DevelopmentConfig, \"testing\": "
    "TestingConfig, \"production\": ProductionConfig}` (the classes themselves, not instances or strings).",
])
ex2 = chapter.exercise("Refuse to start without a real secret, or in debug mode", hints=[
    "Return early when `environment in (\"development\", \"testing\")`, and only then: `DEBUG` and `TESTING` are "
    "settings like any other, which an environment variable can switch on. Otherwise refuse debug mode "
    "(`config.get(\"DEBUG\")`), then look at `config.get(\"SECRET_KEY\")` (`.get`, because the key may be missing) and "
    "`raise ConfigError(...)` when it is not a real secret.",
    "A key is not a real secret when it is missing or empty (`not key`), when it is not text, when it is `\"dev\"`, or "
    "when `len(key) < MIN_SECRET_KEY_LENGTH`. One `if` with `or` covers them all; test `isinstance(key, (str, bytes))` "
    "before calling `len()`.",
    "The message is for the person deploying the app at 3 a.m.: say what is wrong, which variable to set, and how to "
    "make a value, e.g. `raise ConfigError(\"SECRET_KEY is missing or too weak. Set TICKETHUB_SECRET_KEY to a random "
    f"value of at least 32 characters; make one with: {MAKE_A_KEY}\")`.",
])
ex3 = chapter.exercise("Load configuration in layers in `create_app()`", requires=[ex1, ex2], hints=[
    "Load from the weakest source to the strongest, so each one overrides the ones before: "
    "`app.config.from_object(configs[name])`, then `app.config.from_pyfile(\"config.py\", silent=True)`, then "
    "`app.config.from_prefixed_env(\"TICKETHUB\")`, then `test_config`. Check the result last.",
    "`name = os.environ.get(\"TICKETHUB_ENV\", \"development\")`. Before looking it up, `if name not in configs: raise "
    "ValueError(...)` with a message that lists `sorted(configs)`. `silent=True` makes a missing `instance/config.py` "
    "fine; `instance_relative_config=True` (already in the `Flask(...)` line) makes `from_pyfile` look in the "
    "instance folder.",
    "After the layers: `if test_config is not None: app.config.from_mapping(test_config)`, then "
    "`verify_config(app.config, name)`: it must come after every layer, because the real key arrives from the "
    "environment (or the instance file), not from the class; and it is told the environment's `name`, which no "
    "setting can change.",
])
ex4 = chapter.exercise("`wsgi.py`: load `.env`, then build the app", requires=[ex3], hints=[
    "`wsgi.py` is four lines: import `load_dotenv` from `dotenv`, call it, import `create_app` from `tickethub`, and "
    "assign `app = create_app()`.",
    "Order matters: `create_app()` reads `TICKETHUB_*` variables when it runs, so `load_dotenv()` must run before it. "
    "And leave `override` at its default (`False`): a variable set in the real environment (by your shell, Docker or "
    "your host) must win over the `.env` file.",
    "Four lines, in this order: `from dotenv import load_dotenv`, `load_dotenv()`, `from tickethub import "
    "create_app`, `app = create_app()`.",
])
ex5 = chapter.exercise("Keep secrets and local files out of Git", hints=[
    "A `.gitignore` line names what Git should not track: `.env` matches a file called `.env` in any folder; a line "
    "ending in `/` such as `instance/` matches a folder and everything in it.",
    "Beware of wide patterns: `.env*` also hides `.env.example`, which *should* be committed so others know which "
    "variables to set; `config.py` hides `tickethub/config.py` too.",
    "Three lines do it: `.env`, `instance/` and `__pycache__/` (plus `.venv/` if you keep a virtual environment in "
    "the project).",
])


@chapter.warm_up
def _warm_up():
    """Import what a first test request imports (`flask.testing`, …) once, before the server forks."""
    Flask("warm_up").test_client().get("/")


# --- probes: they run in the learner's process, beside the learner's code -------------------------


@contextmanager
def _scene(env: dict, files: dict):
    """Exactly these TICKETHUB_* variables, and these files (text, or None: absent), for one block."""
    with patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith("TICKETHUB_")] + ["PYTHON_DOTENV_DISABLED", "FLASK_DEBUG"]:
            os.environ.pop(name, None)
        os.environ.update(env)
        paths = {Path.cwd() / rel: text for rel, text in files.items()}
        try:
            for path, text in paths.items():
                path.unlink(missing_ok=True)
                if text is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
            yield
        finally:
            for path in paths:
                path.unlink(missing_ok=True)


def _observe(app) -> dict:
    config = getattr(app, "config", None)
    return {"app": app, "config": {k: config[k] for k in KEYS if k in config} if isinstance(config, dict) else None}


@probe
def _factory(create_app, env: dict, files: dict, args: list) -> dict:
    """The learner's `create_app(*args)`, run with exactly `env` and `files`: its app, and what its config holds."""
    with _scene(env, files):
        return _observe(create_app(*args))


@probe
def _wsgi(env: dict, dotenv_text: str | None) -> dict | None:
    """The learner's `wsgi.py`, run as a server would beside this `.env` (or none): its `app` and config."""
    path = Path.cwd() / "wsgi.py"
    with _scene(env, {".env": dotenv_text}):
        return _observe(runpy.run_path(str(path), run_name="wsgi").get("app")) if path.is_file() else None


@probe
def _ancestry(cls) -> list[str]:
    return [f"{k.__module__}.{k.__qualname__}" for k in cls.__mro__[1:]] if isinstance(cls, type) else []


@probe
def _as_dict(mapping) -> dict | None:
    return dict(mapping) if isinstance(mapping, dict) else None


@probe
def _text(error) -> str:
    return str(error)


# --- judge-side helpers --------------------------------------------------------------------------


def _show(value) -> str:
    return "not set" if value == ABSENT else show(value)


def _secret(t, length: int = 64) -> str:
    """A random hex key that stays text under `from_prefixed_env`'s JSON parsing (it ends in a letter, not `e`)."""
    return "".join(t.rng.choice("0123456789abcdef") for _ in range(length - 1)) + t.rng.choice("abcdf")


def _expect(t, config: dict, wanted: dict, source: str, hint: str | None) -> None:
    t.require(all(strictly_equal(config.get(k, ABSENT), v) for k, v in wanted.items()),
              ", ".join(f"`{k}` is `{v!r}`" for k, v in wanted.items()) + f" ({source})",
              lambda: ", ".join(f"`{k}` is {_show(config.get(k, ABSENT))}" for k in wanted), hint)


# --- exercise 1: tickethub/config.py -------------------------------------------------------------

ex1.defines("tickethub.config", path="tickethub/config.py", classes=CLASSES)


@ex1.step("`DevelopmentConfig`, `TestingConfig` and `ProductionConfig` inherit from `Config`")
def _subclasses(t, names):
    for name in CLASSES[1:]:
        ancestors = t.probe(_ancestry, getattr(names, name))
        t.require("tickethub.config.Config" in ancestors, f"a class `{name}(Config)`",
                  f"`{name}` inherits from `{', '.join(a.rsplit('.', 1)[-1] for a in ancestors)}`, not `Config`",
                  f"Did you declare it as `class {name}(Config):`, so that it inherits the shared settings?")
    return names


UPPERCASE = ("Is the name spelled in UPPERCASE, with a value of the right type (`False`, not `\"False\"`; `10`, "
             "not `\"10\"`)?")
SETTINGS = {  # step -> (class, setting, accepted values, expected, hint)
    "`Config` holds the shared defaults: `SECRET_KEY`, `TESTING`, `MAX_TICKETS_PER_ORDER`, `SITE_NAME`": [
        ("Config", name, (value,), f"`Config.{name} = {value!r}`", UPPERCASE) for name, value in (
            ("SECRET_KEY", "dev"), ("TESTING", False), ("MAX_TICKETS_PER_ORDER", 10), ("SITE_NAME", "TicketHub"))],
    "only `TestingConfig` turns `TESTING` on": [
        (cls, "TESTING", (testing,), f"`{cls}.TESTING` is `{testing}`",
         f"Does `{cls}` inherit from `Config` directly, and set only what differs for its environment?")
        for cls, testing in (("DevelopmentConfig", False), ("TestingConfig", True), ("ProductionConfig", False))],
    "no class sets `DEBUG`: debug mode is chosen when the server starts": [
        (cls, "DEBUG", (ABSENT,), f"`{cls}` has no `DEBUG`", "Did you remove every `DEBUG = ...`, in `Config` too? "
         "The `flask` command overwrites it with `FLASK_DEBUG` anyway (so `DEBUG = True` gives no debugger), and "
         "`DEBUG = False` in a class would hide `flask run --debug` from `verify_config`, which must refuse it in "
         "production.") for cls in CLASSES],
    "`ProductionConfig` keeps no secret in code and sends cookies over HTTPS only": [
        ("ProductionConfig", "SECRET_KEY", (None, ""),
         "`ProductionConfig.SECRET_KEY = None`: the real key must come from the environment",
         "Did you override `SECRET_KEY` in `ProductionConfig`? Without it, production inherits `\"dev\"`; and a real "
         "key written here would be in every copy of your code."),
        ("ProductionConfig", "SESSION_COOKIE_SECURE", (True,), "`ProductionConfig.SESSION_COOKIE_SECURE = True`",
         "Did you add `SESSION_COOKIE_SECURE = True` to `ProductionConfig`?")],
    "only production insists on HTTPS cookies: development and testing run over plain HTTP": [
        (cls, "SESSION_COOKIE_SECURE", (ABSENT, False, None), f"`{cls}` does not set `SESSION_COOKIE_SECURE` on",
         "Is `SESSION_COOKIE_SECURE = True` in `ProductionConfig` only? In `Config` every environment inherits it, and "
         "on your laptop (plain HTTP) the browser would never send the session cookie back.")
        for cls in ("Config", "DevelopmentConfig", "TestingConfig")],
}


def _settings(t, names, rows):
    for cls, name, accepted, expected, hint in rows:
        seen = t.get(getattr(names, cls), name, ABSENT)
        t.require(any(strictly_equal(seen, value) for value in accepted), expected,
                  lambda: f"`{cls}.{name}` is {_show(seen)}", hint)
    return names


for _title, _rows in SETTINGS.items():
    ex1.step(_title)(lambda t, names, rows=_rows: _settings(t, names, rows))


@ex1.step("`configs` maps `\"development\"`, `\"testing\"` and `\"production\"` to their classes")
def _mapping(t, names):
    configs = t.get(names.module, "configs")
    if isinstance(configs, Remote) and t.isa(configs, dict):
        configs = t.probe(_as_dict, configs)  # a dict of a subclass's kind, as a plain one
    t.require(type(configs) is dict, "a dict named `configs`", lambda: f"`configs` is {show(configs)}",
              "Did you replace `configs = ...` with a dict literal?")
    t.require(set(configs) == set(ENVIRONMENTS), "exactly the keys `\"development\"`, `\"production\"`, `\"testing\"`",
              lambda: f"the keys {show(sorted(configs, key=repr))}",
              "Are the keys lowercase strings, spelled as `TICKETHUB_ENV` will spell them?")
    for env, cls in zip(ENVIRONMENTS, CLASSES[1:]):
        t.require(configs[env] == getattr(names, cls), f"`configs[\"{env}\"]` is the class `{cls}`",
                  lambda: f"`configs[\"{env}\"]` is {show(configs[env])}",
                  f"Did you map `\"{env}\"` to the class itself (`{cls}`, no parentheses, no quotes)?")


# --- exercise 2: tickethub/startup.py -----------------------------------------------------------

ex2.defines("tickethub.startup", path="tickethub/startup.py", classes=["ConfigError"], functions=["verify_config"])


@ex2.step("`ConfigError` is a `RuntimeError`")
def _runtime_error(t, names):
    t.require("builtins.RuntimeError" in t.probe(_ancestry, names.ConfigError), "a class `ConfigError(RuntimeError)`",
              f"`ConfigError` is {show(names.ConfigError)}, which does not inherit from `RuntimeError`",
              "Did you keep the given `class ConfigError(RuntimeError):`?")
    return names, []


def _production_like(key=ABSENT, **settings) -> dict:
    return {"TESTING": False, "ENV": "production", **settings, **({} if key == ABSENT else {"SECRET_KEY": key})}


def _refused(t, state, cases, hint):
    """`verify_config` raises `ConfigError` for each (key, what); the errors join the state."""
    names, errors = state
    for key, what in cases:
        call = t.attempt(names.verify_config, _production_like(key), "production")
        errors.append(t.raises(call, names.ConfigError, what, hint(call)))
    return names, errors


@ex2.step("`verify_config` raises `ConfigError` when a production config has no `SECRET_KEY`")
def _no_key(t, state):
    return _refused(t, state, ((ABSENT, "no `SECRET_KEY` at all"), (None, "`SECRET_KEY = None`")), lambda call: (
        "Do you return early only in development and testing, read the key with `config.get(\"SECRET_KEY\")` "
        "(it may be missing), and `raise ConfigError(...)` when it is missing?"
        if call.error is None or call.error.isa(KeyError)
        else "Do you raise `ConfigError` (not another exception) when the key is missing?"))


@ex2.step("`verify_config` raises `ConfigError` for an empty, `\"dev\"`, short or non-text `SECRET_KEY`")
def _weak_keys(t, state):
    made = "what `from_prefixed_env` makes of `TICKETHUB_SECRET_KEY={}`"
    return _refused(t, state, (
        ("", "an empty key"), ("dev", "the tutorial's key"), (_secret(t, 31), "31 characters"),
        (t.rng.randrange(10**40, 10**41), "a number: " + made.format("123…")),
        (True, "a `bool`: " + made.format("true")),
    ), lambda call: "Do you reject a key that is empty, `\"dev\"`, not text (`isinstance(key, (str, bytes))`) or "
                    "shorter than `MIN_SECRET_KEY_LENGTH` (32)? Test the type before you call `len()`.")


@ex2.step("the `ConfigError` names `TICKETHUB_SECRET_KEY` and says how to make a key")
def _message(t, state):
    names, errors = state
    for error in errors:  # every refusal's: whoever deploys sees only the one they hit
        message = t.probe(_text, error.remote)
        t.require("TICKETHUB_SECRET_KEY" in message and "secrets.token_" in message,
                  f"a message that names `TICKETHUB_SECRET_KEY` and shows how to make a key: `{MAKE_A_KEY}`",
                  f"the message `{message}`", "Imagine reading it during a failed deployment: does it say which "
                  "variable to set, and the command that makes a good value?")
    return names


@ex2.step("`verify_config` accepts a random key of 32 characters or more")
def _good_keys(t, names):
    for key in (_secret(t, 64), _secret(t, 32), _secret(t, 48).encode()):
        call = t.attempt(names.verify_config, _production_like(key), "production")
        t.require(call.returned, f"{call.text} returns: a random {len(key)}-character "
                  f"{'`bytes` ' if type(key) is bytes else ''}key is a real secret", call.seen,
                  "Is the length test `len(key) < 32` (so that exactly 32 characters is fine)? Text may be `str` "
                  "or `bytes`.")
    return names


@ex2.step("`verify_config` lets development and testing run without a real key")
def _dev_and_test(t, names):
    for config, environment in (({"SECRET_KEY": None}, "development"), ({"TESTING": True, "SECRET_KEY": "dev"},
                                "testing"), ({}, "development"), ({"DEBUG": True, "SECRET_KEY": "dev"}, "development")):
        call = t.attempt(names.verify_config, config, environment)
        t.require(call.returned, f"{call.text} returns without an exception", call.seen,
                  "Do you `return` before any other test when `environment` is `\"development\"` or `\"testing\"`? "
                  "Developers and tests need neither a real secret nor to switch debug mode off.")
    return names


@ex2.step("the environment's name decides: `DEBUG` or `TESTING` in the settings relaxes nothing")
def _name_decides(t, names):
    other = t.word()  # a staging, a demo…: public unless it is one of the two relaxed names
    for config, environment, what in (
            (_production_like("dev", DEBUG=True), "production", "`DEBUG` on, as `TICKETHUB_DEBUG=true` makes it"),
            ({"TESTING": True, "SECRET_KEY": None}, "production", "`TESTING` on, as `TICKETHUB_TESTING=true` makes it"),
            ({"SECRET_KEY": "dev"}, other, f"an environment named {other!r}, neither development nor testing")):
        call = t.attempt(names.verify_config, config, environment)
        t.raises(call, names.ConfigError, what, "Do you decide by the name alone, `if environment in (\"development\", "
                 "\"testing\"): return`, and treat every other name as public? A setting can be switched on by anyone "
                 "who sets an environment variable, so it must not turn the check off.")
    return names


@ex2.step("`verify_config` refuses debug mode outside development and testing, naming `FLASK_DEBUG`")
def _no_debugger(t, names):
    key = _secret(t)
    for environment in ("production", t.word()):
        call = t.attempt(names.verify_config, _production_like(key, DEBUG=True), environment)
        error = t.raises(call, names.ConfigError, f"`DEBUG` on in {environment!r}, even with a real key",
                         "Do you `raise ConfigError(...)` when `config.get(\"DEBUG\")` is true outside development "
                         "and testing? The debugger gives anyone who sees an error page a Python console.")
        message = t.probe(_text, error.remote)
        t.require("FLASK_DEBUG" in message, "a message that names `FLASK_DEBUG`, the usual way debug mode is "
                  "switched on", f"the message `{message}`", "Does the message say what to switch off?")
    for value in (False, None, 0):
        call = t.attempt(names.verify_config, _production_like(key, DEBUG=value), "production")
        t.require(call.returned, f"{call.text} returns: debug mode is off", call.seen,
                  "Do you test the truth of `config.get(\"DEBUG\")`, so that `False` or a missing value is fine?")


# --- exercise 3: tickethub/__init__.py ------------------------------------------------------------

ex3.defines("tickethub", path="tickethub/__init__.py", functions=["create_app"])


def _build(t, s, env=None, instance=None, test_config=None) -> Call:
    """`create_app()` in the learner's process with exactly these variables and instance file."""
    parts = [f"`{k}={v}`" for k, v in (env or {}).items()] + ([f"`{INSTANCE}` setting " + ", ".join(
        f"`{k} = {v!r}`" for k, v in instance.items())] if instance else [])
    text = (f"`create_app({'' if test_config is None else show(test_config)})` with "
            + (", ".join(parts) or "no `TICKETHUB_*` variable and no instance file"))
    file = "".join(f"{k} = {v!r}\n" for k, v in instance.items()) if instance else None
    try:
        seen = t.probe(_factory, s.create_app, env or {}, {INSTANCE: file}, [test_config] * (test_config is not None))
    except LearnerError as error:
        t.require(not (error.isa(OSError) and "config.py" in error.message),
                  "`create_app()` works when there is no `instance/config.py`", f"`{error.type_name}` about a missing "
                  "`config.py`", "Did you pass `silent=True` to `app.config.from_pyfile(\"config.py\", silent=True)`? "
                  "Most machines (and every test) have no instance file.")
        return Call(text, error=error)
    call = Call(text, value=seen["app"])
    call.config = seen["config"]
    return call


def _built(t, s, hint: str | None, **scene) -> Call:
    """`_build`, which must give a Flask app: a `ConfigError` fails with `hint`; other errors are the learner's."""
    call = _build(t, s, **scene)
    if call.error:
        t.require(not call.error.isa(s.ConfigError), f"{call.text} builds an app", call.seen, hint)
        raise call.error
    t.require(t.isa(call.value, Flask), f"{call.text} returns a Flask app", call.seen,
              "Did you keep `return app` at the end of `create_app()`?")
    return call


def _layer(t, s, wanted: dict, source: str, hint: str, refused: str | None = None, **scene):
    """The app built in this scene has the `wanted` settings."""
    _expect(t, _built(t, s, refused or hint, **scene).config, wanted, source, hint)
    return s


CLASS_LAYER = "`app.config.from_object(configs[name])`"
KEY_LATE = "Do you call `verify_config(app.config, name)` after every layer, {} included?"


@ex3.step("`create_app()` with no `TICKETHUB_ENV` and no instance file builds a development app")
def _default(t, s):
    s.ConfigError = t.get(t.module("tickethub.startup"), "ConfigError")
    return _layer(t, s, {"TESTING": False, "MAX_TICKETS_PER_ORDER": 10, "SESSION_COOKIE_SECURE": False},
                  "the `DevelopmentConfig` values, and `Config`'s limit",
                  f"Does `TICKETHUB_ENV` default to `\"development\"`, and do you load the class with {CLASS_LAYER}?",
                  "Is the default of `os.environ.get(\"TICKETHUB_ENV\", ...)` `\"development\"`, and do you load that "
                  f"class with {CLASS_LAYER} before `verify_config(...)`?")


@ex3.step("`TICKETHUB_ENV=testing` selects `TestingConfig`")
def _testing(t, s):
    return _layer(t, s, {"TESTING": True, "SESSION_COOKIE_SECURE": False}, "the `TestingConfig` values", "Do you read the name with "
                  "`os.environ.get(\"TICKETHUB_ENV\", \"development\")` and load `configs[name]`?",
                  env={"TICKETHUB_ENV": "testing"})


@ex3.step("an unknown `TICKETHUB_ENV` raises `ValueError` listing the valid names")
def _unknown(t, s):
    for name in (t.word(), "prod"):
        error = t.raises(_build(t, s, {"TICKETHUB_ENV": name}), ValueError, "an unknown environment",
                         "Do you check `if name not in configs:` and `raise ValueError(...)` before the lookup? "
                         "(A bare `configs[name]` raises a `KeyError` that does not say what would be right.)")
        message = t.probe(_text, error.remote)
        t.require(all(env in message for env in ENVIRONMENTS), "a message that lists `development`, `production` "
                  "and `testing`", f"the message `{message}`",
                  "Does the message include the valid names, e.g. `\", \".join(sorted(configs))`?")
    return s


def _instance(t) -> dict:
    return {"MAX_TICKETS_PER_ORDER": t.rng.randrange(11, 99), "SITE_NAME": f"TicketHub {t.word().title()}"}


@ex3.step("`instance/config.py` overrides the class defaults")
def _instance_layer(t, s):
    return _layer(t, s, (instance := _instance(t)), f"from `{INSTANCE}`", "Do you call "
                  "`app.config.from_pyfile(\"config.py\", silent=True)` after `from_object(...)`, with the app created "
                  "as `Flask(__name__, instance_relative_config=True)` so that the file is looked for in the instance "
                  "folder?", instance=instance)


@ex3.step("`TICKETHUB_*` environment variables beat `instance/config.py`, parsed as JSON")
def _prefixed(t, s):
    instance, limit, site, flag = _instance(t), t.rng.randrange(100, 999), t.word("Hub "), t.word().upper()
    env = {"TICKETHUB_MAX_TICKETS_PER_ORDER": str(limit), "TICKETHUB_SITE_NAME": site,
           f"TICKETHUB_FEATURES__{flag}": "true"}
    config = _built(t, s, None, env=env, instance=instance).config
    seen, features = config.get("MAX_TICKETS_PER_ORDER", ABSENT), config.get("FEATURES", ABSENT)
    t.require(seen != instance["MAX_TICKETS_PER_ORDER"], f"`MAX_TICKETS_PER_ORDER` {limit} from "
              f"`TICKETHUB_MAX_TICKETS_PER_ORDER={limit}` (the instance file says {instance['MAX_TICKETS_PER_ORDER']})",
              f"{_show(seen)}, the instance file's value", "Do you call `app.config.from_prefixed_env(\"TICKETHUB\")`, "
              "and after `from_pyfile(...)`? Later layers override earlier ones.")
    t.require(strictly_equal(seen, limit), f"`MAX_TICKETS_PER_ORDER` is the number {limit} (an `int`)",
              lambda: _show(seen) + ("" if seen == ABSENT else f" (a `{type(seen).__name__}`)"),
              "Did you use `app.config.from_prefixed_env(\"TICKETHUB\")`? It parses each value as JSON, so `\"12\"` "
              "becomes `12`; `os.environ` alone only ever gives text.")
    _expect(t, config, {"SITE_NAME": site}, "from `TICKETHUB_SITE_NAME`",
            "Do you load every `TICKETHUB_*` variable with `from_prefixed_env(\"TICKETHUB\")`?")
    t.require(isinstance(features, dict) and features.get(flag) is True,
              f"`app.config[\"FEATURES\"][\"{flag}\"]` is `True` from `TICKETHUB_FEATURES__{flag}=true`",
              lambda: f"`FEATURES` is {_show(features)}",
              "Did you use `app.config.from_prefixed_env(\"TICKETHUB\")`? It turns `__` into nested keys.")
    return s


@ex3.step("`test_config` beats every other layer")
def _test_config(t, s):
    wanted = {"MAX_TICKETS_PER_ORDER": t.rng.randrange(1000, 9999), "SITE_NAME": t.word("Test ")}
    env = {"TICKETHUB_MAX_TICKETS_PER_ORDER": str(t.rng.randrange(100, 999)), "TICKETHUB_SITE_NAME": t.word("Hub ")}
    return _layer(t, s, wanted, "`test_config`, even with an instance file and `TICKETHUB_*` variables set",
                  "Do you apply `test_config` (with `app.config.from_mapping(test_config)`) after "
                  "`from_prefixed_env(...)`? A test must always get the settings it asks for.",
                  env=env, instance=_instance(t), test_config=wanted)


@ex3.step("production refuses to start without a real `SECRET_KEY`")
def _production_refuses(t, s):
    for key in (None, "dev", _secret(t, 20)):
        env = {"TICKETHUB_ENV": "production", **({} if key is None else {"TICKETHUB_SECRET_KEY": key})}
        hint = ("Does `create_app()` call `verify_config(app.config, name)` once every layer is loaded, with the `name` "
                "it chose the class by?")
        error = t.raises(_build(t, s, env), s.ConfigError, "no real key", hint)
        t.require("TICKETHUB_SECRET_KEY" in t.probe(_text, error.remote),
                  "a `ConfigError` that names `TICKETHUB_SECRET_KEY`", error.seen(), hint)
    return s


@ex3.step("production refuses debug mode and weak keys, whatever `TICKETHUB_DEBUG` or `TICKETHUB_TESTING` say")
def _production_by_name(t, s):
    production = {"TICKETHUB_ENV": "production"}
    for env, what in (({"TICKETHUB_DEBUG": "true", "TICKETHUB_SECRET_KEY": "dev"}, "`DEBUG` switched on, key `\"dev\"`"),
                      ({"TICKETHUB_TESTING": "true"}, "`TESTING` switched on, no key"),
                      ({"FLASK_DEBUG": "1", "TICKETHUB_SECRET_KEY": _secret(t)}, "debug mode, a real key")):
        t.raises(_build(t, s, {**production, **env}), s.ConfigError, what, "Do you pass the environment's name to "
                 "`verify_config(app.config, name)`, the name you chose the class by? A setting such as `DEBUG` can be "
                 "switched on by any `TICKETHUB_*` variable.")
    return s


@ex3.step("production starts with a real key from `TICKETHUB_SECRET_KEY`, `instance/config.py` or `test_config`")
def _production_starts(t, s):
    production, keys = {"TICKETHUB_ENV": "production"}, [_secret(t) for _ in range(3)]
    _layer(t, s, {"SECRET_KEY": keys[0], "DEBUG": False, "SESSION_COOKIE_SECURE": True}, "`ProductionConfig`",
           "Does `TICKETHUB_ENV=production` load `ProductionConfig`, with the environment layer after it?",
           KEY_LATE.format("`from_prefixed_env(\"TICKETHUB\")`") + " The key only arrives with the environment layer.",
           env={**production, "TICKETHUB_SECRET_KEY": keys[0]})
    _layer(t, s, {"SECRET_KEY": keys[1]}, f"from `{INSTANCE}`", "Do you load `instance/config.py` after the class?",
           KEY_LATE.format("`from_pyfile(...)`"), env=production, instance={"SECRET_KEY": keys[1]})
    return _layer(t, s, {"SECRET_KEY": keys[2]}, "from `test_config`", "Do you apply `test_config` last?",
                  KEY_LATE.format("`test_config`") + " A test may bring its own key.", env=production,
                  test_config={"SECRET_KEY": keys[2]})


@ex3.step("the events API, the warm-up routes and the JSON errors of chapter 01 still work")
def _api(t, s):
    client = t.client(_built(t, s, "Does `verify_config` let a testing app run with any key?",
                             env={"TICKETHUB_ENV": "testing"}).value)
    event, events = {"name": t.word("Concert ").title(), "capacity": t.rng.randrange(10, 500)}, "events.bp"
    created = t.json(client.post("/api/events/", json=event), 201, "the new event",
                     "Did you keep the blueprint registrations from chapter 01 in `create_app()`?")
    t.require(isinstance(created, dict) and created.get("name") == event["name"],
              f"the created event, named {event['name']!r}", f"`{show(created)}`",
              "Did you keep `events.bp` registered with `url_prefix=\"/api/events\"`?")
    for url, what, registration in ((f"/api/events/{created.get('id')}", "the event", events),
                                    ("/api/venues/", "the list of venues", "venues.bp"),
                                    (f"/api/greet/{t.word().title()}", "a greeting", "warmup.bp")):
        t.json(client.get(url), 200, what, f"Did you keep `{registration}` registered as chapter 01 left it?")
    reply = client.get(f"/api/events/{t.rng.randrange(10**5, 10**6)}")
    t.require(reply.status_code == 404 and reply.is_json, f"{reply.request} (no such event) answers 404 with a JSON "
              "error", f"{reply.status_code} with `Content-Type: {reply.content_type}`",
              "Did you keep `errors.register_error_handlers(app)` in `create_app()`?")


# --- exercise 4: wsgi.py ----------------------------------------------------------------------------


def _run_wsgi(t, env: dict, dotenv_text: str | None) -> dict:
    """What the config of the `app` that the learner's wsgi.py builds holds (run in the learner's process)."""
    seen = t.probe(_wsgi, env, dotenv_text)
    t.require(seen is not None, "a file `wsgi.py` at the project's top level, beside `tickethub/`",
              "there is no `wsgi.py`", "Did you run the exercise cell that writes `wsgi.py`?")
    t.require(t.isa(seen["app"], Flask), "`wsgi.py` defines `app`, the Flask app from `create_app()`",
              f"`app` is {show(seen['app'])}", "Did you end `wsgi.py` with `app = create_app()`?")
    return seen["config"]


@ex4.step("`wsgi.py` loads `.env` before it calls `create_app()`")
def _dotenv(t, state):
    key, env_site, real_site = _secret(t), t.word("Hub "), t.word("Hub ")
    config = _run_wsgi(t, {"TICKETHUB_SITE_NAME": real_site}, "# written by the check\nTICKETHUB_ENV=production\n"
                       f"TICKETHUB_SECRET_KEY={key}\nTICKETHUB_SITE_NAME=\"{env_site}\"\n")
    _expect(t, config, {"SECRET_KEY": key, "SESSION_COOKIE_SECURE": True}, "a production app, as `.env` sets "
            "`TICKETHUB_ENV=production` and that key", "Do you call `load_dotenv()` before `create_app()`? "
            "`create_app()` reads the environment when it runs, so variables loaded after it come too late.")
    return config, env_site, real_site


@ex4.step("a variable set in the real environment beats the same one in `.env`")
def _real_wins(t, state):
    config, env_site, real_site = state
    _expect(t, config, {"SITE_NAME": real_site}, f"from the real environment; `.env` says {env_site!r}",
            "Did you call `load_dotenv(override=True)`? Leave `override` at its default (`False`): the real "
            "environment, set by whoever runs the app, must win over a file.")


@ex4.step("`wsgi.py` also works with no `.env` file, from the real environment alone")
def _no_dotenv(t, state):
    key = _secret(t)
    _expect(t, _run_wsgi(t, {"TICKETHUB_ENV": "production", "TICKETHUB_SECRET_KEY": key}, None), {"SECRET_KEY": key},
            "from the real environment, with no `.env` file", "Do you build the app with `create_app()` (which reads "
            "the environment), rather than reading `.env` yourself? Servers usually have no `.env` file at all.")


# --- exercise 5: .gitignore ------------------------------------------------------------------------------


def gitignore_rules(text: str) -> list[tuple[bool, bool, bool, list[str]]]:
    """Parse .gitignore text into (negated, directories only, anchored, the pattern's parts) rules."""
    rules = []
    for raw in text.splitlines():
        line = raw if raw.endswith("\\ ") else raw.rstrip(" ")
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            line = line[1:] if negated or line.startswith("\\") else line
            if line.rstrip("/"):
                parts = line.rstrip("/").lstrip("/").replace("[^", "[!").split("/")
                rules.append((negated, line.endswith("/"), "/" in line.rstrip("/"), parts))
    return rules


def _glob(parts: list[str], names: list[str]) -> bool:
    """Do a path's names match a pattern's parts? `**` is any number of folders (at the end: at least one name)."""
    if parts[:1] == ["**"]:
        return any(_glob(parts[1:], names[i:]) for i in range(len(names) + 1)) if parts[1:] else bool(names)
    if not parts or not names:
        return not parts and not names
    return fnmatch.fnmatchcase(names[0], parts[0]) and _glob(parts[1:], names[1:])


def gitignored(rules, path: str) -> bool:
    """Would Git ignore the file at `path` (relative, with `/`) under these rules?"""
    names = path.split("/")
    for end in range(1, len(names)):  # a file in an ignored folder cannot be re-included
        if _matches(rules, names[:end], True):
            return True
    return _matches(rules, names, False)


def _matches(rules, names: list[str], is_dir: bool) -> bool:
    ignored = False
    for negated, directory, anchored, parts in rules:
        if (is_dir or not directory) and _glob(parts, names if anchored else names[-1:]):
            ignored = not negated
    return ignored


GITIGNORE = (  # step, paths, whether Git must ignore them, hint
    ("`.gitignore` makes Git ignore `.env`", (".env",), True,
     "Is there a line `.env` (exactly: no spaces, no quotes)?"),
    ("`.gitignore` makes Git ignore everything in `instance/`", ("instance/config.py", "instance/tickethub.sqlite"),
     True, "Is there a line `instance/`, which ignores the folder and everything in it? Later chapters keep the "
     "database there too."),
    ("`.gitignore` keeps `.env.example`, `.flaskenv`, `wsgi.py` and the `tickethub` package in Git",
     (".env.example", ".flaskenv", ".gitignore", "wsgi.py", "tickethub/__init__.py", "tickethub/config.py",
      "tickethub/startup.py", "tickethub/events/routes.py"), False, "Is one of your patterns too wide? `.env*` also matches `.env.example`, "
     "`config.py` also matches `tickethub/config.py`, and `*.py` matches all your code."),
    ("`.gitignore` makes Git ignore Python's `__pycache__/` folders",
     ("__pycache__/wsgi.cpython-312.pyc", "tickethub/__pycache__/config.cpython-312.pyc",
      "tickethub/events/__pycache__/routes.cpython-312.pyc"), True,
     "Is there a line `__pycache__/`? Without a `/` at the start it matches the folder at every level."),
)


def _ignores(t, rules, paths, ignored: bool, hint: str):
    if rules is None:  # the first step reads the file (text only: nothing of the learner's runs)
        path = t.project / ".gitignore"
        t.require(path.is_file(), "a `.gitignore` file at the project's top level", "there is no `.gitignore`",
                  "Did you run the exercise cell that writes `.gitignore`?")
        rules = gitignore_rules(path.read_text(encoding="utf-8", errors="replace"))
    for path in paths:
        t.require(gitignored(rules, path) is ignored, f"`{path}` is {'' if ignored else 'not '}ignored"
                  + ("" if ignored else ": it belongs in version control"),
                  f"Git would {'track' if ignored else 'ignore'} `{path}`"
                  + (", and your secrets with it" if path == ".env" else ""), hint)
    return rules


for _title, *_case in GITIGNORE:
    ex5.step(_title)(lambda t, rules, case=tuple(_case): _ignores(t, rules, *case))

setup, reset = chapter.setup, chapter.reset
