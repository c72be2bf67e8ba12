"""Checks for chapter 07: Authentication (safe `next` redirects, password hashing, a test of the redirects).

`safe_next` is a pure function: its answers come back as data. The password functions read their cost parameters from
the app's config, so they run inside an app context, of a bare Flask app whose config holds cheap parameters (the
whole `create_app()` would cost a check 200 ms and prove nothing more here); the judge builds the hashes it compares them with itself, with argon2-cffi.
"""
from __future__ import annotations

from types import SimpleNamespace as State

import argon2  # noqa: F401  (imported before the check server forks: checks start warm)
from argon2 import PasswordHasher
from flask import Flask

from ..engine.learner import probe
from ..notebook.api import Bug, Chapter, Correct

chapter = Chapter(__name__, "Authentication")

EVIL = "evil.example"
# every one is refused, on every seed: another site, a scheme, a backslash browsers read as a slash, no leading slash
REFUSED = {
    "a protocol-relative URL": f"//{EVIL}",
    "a protocol-relative URL with a path": f"//{EVIL}/login",
    "an absolute URL": f"https://{EVIL}/",
    "an absolute URL on plain HTTP": f"http://{EVIL}",
    "a scheme and one slash": f"https:/{EVIL}",
    "a slash and a backslash": f"/\\{EVIL}",
    "two backslashes": f"\\\\{EVIL}",
    "a backslash inside the path": "/events\\..\\admin",
    "a `javascript:` URL": "javascript:alert(1)",
    "a `data:` URL": "data:text/html,<script>alert(1)</script>",
    "a host without a scheme": f"{EVIL}/login",
    "a relative path without a leading slash": "events/1",
    "a leading space": f" //{EVIL}",
    "a tab inside the slashes": f"/\t/{EVIL}",
    "a line break (header injection)": "/events\r\nSet-Cookie: session=stolen",
    "a NUL byte": "/events\x00",
    "a DEL character": "/events\x7f",
    "an empty string": "",
}


ex1 = chapter.exercise(
    "Safe redirects",
    hints=[
        "Refuse first, accept last: a target is safe only when it is a path on this site. What does a browser do with "
        "`//evil.example`, and with `/\\evil.example`? (Both go to evil.example.)",
        "Check, in order: that `target` is a `str` and not empty; that it starts with `/` but not with `//`; that it has "
        "no backslash; and that no character is a control character (`ord(c) < 32` or `ord(c) == 127`).",
        "`if not isinstance(target, str) or not target.startswith(\"/\") or target.startswith(\"//\") or \"\\\\\" in "
        "target or any(ord(c) < 32 or ord(c) == 127 for c in target): return fallback`, then `return target`.",
    ],
)
ex1.defines("tickethub.auth.redirects", functions=["safe_next"])


def _fallback(t) -> str:
    return f"/{t.word()}/{t.rng.randrange(1, 999)}"


@ex1.step("`safe_next(target, fallback)` returns `target` when it is a path on this site")
def _accepts(t, names):
    fallback = _fallback(t)
    page = t.rng.randrange(2, 50)
    for target in ("/", f"/events/{page}", f"/events/?page={page}&sort=-name", f"/{t.word()}#tickets",
                   "/search?q=jazz night", f"/events/?next=//{EVIL}", "/a:b", "/events/%2F%2Fx",
                   "/événements/café", "/search?q=caf\u00e9\u00a0bar"):  # text beyond ASCII is not a control character
        call = t.attempt(names.safe_next, target, fallback)
        t.require(call.returned and call.value == target and type(call.value) is str,
                  f"`safe_next({target!r}, {fallback!r})` returns `{target!r}`", call.seen(),
                  "Is a path that starts with one `/` accepted as it is, its query string and fragment too?")
    call = t.attempt(names.safe_next, f"/events/{page}")
    t.require(call.returned and call.value == f"/events/{page}", f"`safe_next('/events/{page}')`, without a fallback, "
              f"returns `'/events/{page}'`", call.seen(), "Did you keep the signature `safe_next(target, fallback=\"/\")`?")
    return names


@ex1.step("it returns `fallback` for anything else: another site, a scheme, a backslash, a control character, nothing")
def _refuses(t, names):
    fallback = _fallback(t)
    cases = dict(REFUSED)
    cases.update({f"control character {code}": f"/events/{chr(code)}" for code in (*range(32), 127)})
    for kind, target in cases.items():
        call = t.attempt(names.safe_next, target, fallback)
        t.require(call.returned and call.value == fallback, f"`safe_next({target!r}, {fallback!r})` ({kind}) returns "
                  f"the fallback, `{fallback!r}`", call.seen(),
                  "Is every target refused unless it starts with exactly one `/`, has no `\\`, and no control character?")
    for target in (None, 42, b"/events"):
        call = t.attempt(names.safe_next, target, fallback)
        t.require(call.returned and call.value == fallback, f"`safe_next({target!r}, {fallback!r})` returns the "
                  f"fallback (`next` was missing, or not text)", call.seen(),
                  "Do you return `fallback` when `target` is not a `str` (a missing `next` is `None`)?")
    call = t.attempt(names.safe_next, f"//{EVIL}")
    t.require(call.returned and call.value == "/", f"`safe_next('//{EVIL}')`, without a fallback, returns `'/'`",
              call.seen(), "Did you keep the signature `safe_next(target, fallback=\"/\")`?")


ex2 = chapter.exercise(
    "Password hashing",
    hints=[
        "`hasher()` is given: a `PasswordHasher` with the app's parameters. Its `hash(password)` makes a new salt each "
        "time, `verify(hash, password)` returns `True` or raises, and `check_needs_rehash(hash)` compares parameters.",
        "`verify` raises `VerifyMismatchError` (a `VerificationError`) for a wrong password and `InvalidHashError` for "
        "something that is not an argon2 hash: catch both, and return `False`.",
        "`return hasher().hash(password)`; `try: return hasher().verify(password_hash, password)` / `except "
        "(VerificationError, InvalidHashError): return False`; `return hasher().check_needs_rehash(password_hash)`.",
    ],
)
ex2.defines("tickethub.auth.passwords", functions=["hasher", "hash_password", "verify_password", "needs_rehash"])
_contexts: list = []
_apps: dict = {}


@probe
def _push_app(config):
    key = tuple(sorted(config.items()))
    if key not in _apps:  # one app per check: making one costs more than the hashes
        _apps[key] = Flask("tickethub-check")
        _apps[key].config.from_mapping(config)
    context = _apps[key].app_context()
    context.push()
    _contexts.append(context)


@probe
def _pop_app():
    _contexts.pop().pop()


def _in_app(t, s, function, *args):
    t.probe(_push_app, s.config)
    try:
        return t.attempt(function, *args)
    finally:
        t.probe(_pop_app)


def _password(t) -> str:
    return f"{t.word()}-{t.word()}-{t.rng.randrange(10**5, 10**6)}"


@ex2.step("`hash_password(password)` returns an argon2id hash made with the app's `ARGON2_TIME_COST` and "
          "`ARGON2_MEMORY_COST` (and `ARGON2_PARALLELISM`), a new salt each time")
def _hash(t, names):
    s = State(names=names, time_cost=t.rng.choice((1, 2)), memory_cost=t.rng.choice((16, 32)))
    s.config = {"ARGON2_TIME_COST": s.time_cost, "ARGON2_MEMORY_COST": s.memory_cost, "ARGON2_PARALLELISM": 1}  # an app's config, cheap costs
    s.password = _password(t)
    first = t.returns(_in_app(t, s, names.hash_password, s.password), str, "the hash, a `str`",
                      "Does `hash_password` return `hasher().hash(password)`?")
    t.require(first.startswith("$argon2id$"), "a hash that starts with `$argon2id$`", f"`{first[:12]}...`",
              "Do you hash with `hasher()`, argon2id?")
    wanted = f"$m={s.memory_cost},t={s.time_cost},p=1$"
    t.require(wanted in first, f"the app's parameters in the hash, `{wanted[1:-1]}`", f"`{first.split('$')[3]}`"
              if first.count("$") > 3 else f"`{first[:20]}...`", "Do you hash with `hasher()`, which reads the config?")
    t.require(s.password not in first, "a hash that does not contain the password", "the password, in the hash",
              "Do you return the hash, not the password?")
    second = t.returns(_in_app(t, s, names.hash_password, s.password), str, "the hash, a `str`",
                       "Does `hash_password` return `hasher().hash(password)`?")
    t.require(first != second, "two hashes of one password that differ (each has its own random salt)",
              "the same hash twice", "Do you make a new hash on every call, rather than keep one?")
    s.hash = first
    return s


@ex2.step("`verify_password(hash, password)` is `True` for the password, `False` for any other or a malformed hash")
def _verify(t, s):
    ours = PasswordHasher(time_cost=s.time_cost + 1, memory_cost=s.memory_cost * 2, parallelism=1).hash(s.password)
    for password_hash, label in ((s.hash, "your hash"), (ours, "an argon2id hash made with other parameters")):
        call = _in_app(t, s, s.names.verify_password, password_hash, s.password)
        t.require(call.returned and call.value is True, f"`verify_password(...)` with {label} and its password "
                  "returns `True`", call.seen(), "Do you return what `hasher().verify(password_hash, password)` returns?")
    wrong = (s.password + "x", s.password[:-1], s.password.upper(), "", " " + s.password)
    for password in wrong:
        call = _in_app(t, s, s.names.verify_password, s.hash, password)
        t.require(call.returned and call.value is False, f"`verify_password(hash, {password!r})`, a wrong password, "
                  "returns `False`", call.seen(), "Do you catch `VerificationError` (a wrong password) and return `False`?")
    malformed = ("", "not a hash", "$2b$12$" + "a" * 53, s.hash[:-6], s.hash.replace("$argon2id$", "$argon2x$"))
    for password_hash in malformed:
        call = _in_app(t, s, s.names.verify_password, password_hash, s.password)
        t.require(call.returned and call.value is False, f"`verify_password({password_hash!r}, password)`, a malformed "
                  "hash, returns `False`", call.seen(),
                  "Do you also catch `InvalidHashError` (not an argon2 hash at all) and return `False`?")
    return s


@ex2.step("`needs_rehash(hash)` is `True` for a hash made with other parameters than the app's, `False` for its own")
def _rehash(t, s):
    call = _in_app(t, s, s.names.needs_rehash, s.hash)
    t.require(call.returned and call.value is False, "`needs_rehash(...)` of a hash just made returns `False`",
              call.seen(), "Do you return `hasher().check_needs_rehash(password_hash)`?")
    others = {"a higher time cost": PasswordHasher(time_cost=s.time_cost + 1, memory_cost=s.memory_cost, parallelism=1),
              "a lower memory cost": PasswordHasher(time_cost=s.time_cost, memory_cost=s.memory_cost // 2, parallelism=1),
              "another parallelism": PasswordHasher(time_cost=s.time_cost, memory_cost=s.memory_cost, parallelism=2)}
    for label, other in others.items():
        call = _in_app(t, s, s.names.needs_rehash, other.hash(s.password))
        t.require(call.returned and call.value is True, f"`needs_rehash(...)` of a hash made with {label} returns "
                  "`True`", call.seen(), "Do you return `hasher().check_needs_rehash(password_hash)`?")


ex3 = chapter.exercise(
    "A test for open redirects",
    hints=[
        "Import the function, `from tickethub.auth.redirects import safe_next`, and call it: assert what it returns "
        "(`==`), for targets it must keep and for targets it must refuse.",
        "One refused target is not enough: a browser goes to another site for `//evil.example`, `https://evil.example`, "
        "`/\\evil.example` and `javascript:...`. Parametrise a test over them, and keep one test for a path it keeps.",
        "`@pytest.mark.parametrize(\"target\", [\"//evil.example\", \"https://evil.example\", \"/\\\\evil.example\", "
        "\"javascript:alert(1)\", None])` / `def test_refused(target): assert safe_next(target, \"/home\") == \"/home\"`;"
        " and `def test_kept(): assert safe_next(\"/events/3?page=2\", \"/home\") == \"/events/3?page=2\"`.",
    ],
)
REDIRECT_TESTS, REDIRECTS = "tests/test_safe_redirects.py", "tickethub/auth/redirects.py"
SLASHES = 'or target.startswith("//")'
ex3.tests_catch(REDIRECT_TESTS, hint=(
    "On the reference, `safe_next` returns a path on this site as it is and the fallback for anything else. Does your "
    "test import `safe_next` from `tickethub.auth.redirects` and compare what it returns with `==`?"), accepts=[
    Correct("`safe_next` is written with `urllib.parse.urlsplit`, and refuses with the fallback given (any one)",
            REDIRECTS, SLASHES, 'or urlsplit(target).netloc or urlsplit(target).scheme or target[1:2] == "/"',
            more=((REDIRECTS, '"""Safe `next` targets', 'from urllib.parse import urlsplit\n\n"""Safe `next` targets'),),
            hint="Does your test check how `safe_next` is written, or a fallback of its own choosing? Call it with a "
                 "fallback and assert that this fallback comes back."),
], bugs=[
    Bug("a protocol-relative URL, `//evil.example`, is kept", REDIRECTS, SLASHES, "",
        hint="`//evil.example` is another site to a browser. Does a test send it?"),
    Bug("a backslash is allowed, so `/\\evil.example` is kept", REDIRECTS, ' or "\\\\" in target', "",
        hint="Browsers read `\\` as `/`: `/\\evil.example` is `//evil.example`. Does a test send it?"),
    Bug("a URL with a scheme is kept (`https://evil.example`, `javascript:alert(1)`)", REDIRECTS,
        'not target.startswith("/")', 'target.startswith("\\t")',
        hint="Does a test send an absolute URL, `https://evil.example`, or a `javascript:` one?"),
    Bug("every target is refused, the safe paths too", REDIRECTS, "    return target\n", "    return fallback\n",
        hint="A function that always refuses passes every test of refusals. Does a test assert that a path on this "
             "site is kept, `safe_next(\"/events/3\", ...) == \"/events/3\"`?"),
    Bug("a refused target gives `/` whatever the fallback", REDIRECTS, "        return fallback\n",
        "        return \"/\"\n", hint="Does a test pass a fallback of its own (not `/`) and assert that it comes back?"),
])


setup, reset = chapter.setup, chapter.reset
