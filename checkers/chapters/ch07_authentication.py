"""Checks for chapter 07: Authentication (safe `next` redirects, password hashing, accounts, login pages, tests).

`safe_next` is a pure function: its answers come back as data. The password functions read their cost parameters from
the app's config, so they run inside an app context, of a bare Flask app whose config holds cheap parameters (the
whole `create_app()` would cost a check 200 ms and prove nothing more here); the judge builds the hashes it compares
them with itself, with argon2-cffi. The account service runs on the check's own database (`dbkit.check_app`); the
login pages are used as a browser uses them, through the learner's `create_app()`: a GET for the form and its CSRF
token, a POST, and the cookies and redirects that come back.
"""
from __future__ import annotations

import re
from types import SimpleNamespace as State
from urllib.parse import urlencode

import argon2  # noqa: F401  (imported before the check server forks: checks start warm)
from argon2 import PasswordHasher
from flask import Blueprint, Flask

from ..engine.judge import Remote, show
from ..engine.learner import probe
from ..notebook.api import Bug, Chapter, Correct
from . import dbkit
from .kit import app_from_factory

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "Authentication")
chapter.warm_up(dbkit.warm_up)

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



# --- exercise 4: accounts ---------------------------------------------------------------------------------

ex4 = chapter.exercise(
    "Accounts",
    requires=[ex2],
    hints=[
        "`normalize_email` is one line of `str` methods. In `register`, collect the problems in a dict (`errors"
        "[\"email\"] = \"...\"`), raise `AccountError(errors)` if there are any, and only then add the user and commit. "
        "Look a user up with `db.session.scalar(select(User).filter_by(email=...))`.",
        "An email is bad when it is not a `str`, longer than 254 characters, or not `EMAIL.fullmatch(...)`; taken "
        "when a user has it after `normalize_email`. Catch `IntegrityError` around the commit too (two requests at "
        "once), roll back, and raise `AccountError`. In `authenticate`, an unknown email still calls "
        "`verify_password(dummy_hash(), password)`.",
        "`authenticate`: `email = normalize_email(email)`; `user = db.session.scalar(select(User).filter_by(email="
        "email)) if EMAIL.fullmatch(email) else None`; `if user is None: verify_password(dummy_hash(), password); "
        "return None`; `if not verify_password(user.password_hash, password): return None`; `if needs_rehash(user."
        "password_hash): user.password_hash = hash_password(password); db.session.commit()`; `return user`.",
    ],
)
ex4.defines("tickethub.auth.services", classes=["AccountError"],
            functions=["normalize_email", "register", "authenticate", "dummy_hash"])
USERS = "users"
CHEAP = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 16, "ARGON2_PARALLELISM": 1}  # hashes in about a millisecond
_verifies: list = []


def _email(t, n: int = 0) -> str:
    return f"{t.word()}.{t.word()}{n}{t.rng.randrange(10**4)}@{t.word()}.example"


def _hash(password: str, **costs) -> str:
    """A hash the judge makes itself: the app's cheap parameters, or the ones given."""
    params = {"time_cost": 1, "memory_cost": 16, "parallelism": 1, **costs}
    return PasswordHasher(**params).hash(password)


def _hashed_with_app(password_hash) -> bool:
    return isinstance(password_hash, str) and "$m=16,t=1,p=1$" in password_hash


def _matches(password_hash, password: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, TypeError):
        return False


def _user_row(t, email: str, password: str, role: str = "organizer", **costs) -> dict:
    row = {"email": email, "password_hash": _hash(password, **costs), "role": role}
    return {**row, "id": dbkit.insert(t, USERS, row)[0]}


@probe
def _count_verifies():
    """From now on, count every argon2 verification that computes a hash (in the learner's process): a hash that is
    not argon2's is refused before any work, and that is no alibi for an unknown email."""
    import argon2._password_hasher as password_hasher
    import argon2.low_level as low_level

    def counting(function):
        def count(*args, **kwargs):
            _verifies.append(1)
            return function(*args, **kwargs)
        return count

    for module in (password_hasher, low_level):
        module.verify_secret = counting(module.verify_secret)


@probe
def _verified() -> int:
    return len(_verifies)


def _accounts(t, names) -> State:
    user_class = t.get(t.module("tickethub.auth.models"), "User")  # imported first: the users table joins the metadata
    check = dbkit.check_app(t, config=CHEAP)
    return State(names=names, check=check, app=check.app, User=user_class)


def _account(t, s, function, *args):
    """Call `register` or `authenticate` in an app context; the call, and the returned user's id and email (read in
    that context: the user's session ends with it)."""
    with dbkit.app_context(t, s.app):
        call = t.attempt(function, *args)
        user = call.returned and isinstance(call.value, Remote) and t.isa(call.value, s.User)
        return call, ({"id": t.get(call.value, "id"), "email": t.get(call.value, "email")} if user else None)


def _user(t, call, user, what: str, hint: str) -> dict:
    """The id and email of the `User` a call returned, or a failed step."""
    t.require(user is not None, f"{call.text} returns {what}, a `User`", call.seen(), hint)
    return user


@ex4.step("`normalize_email(email)` returns the address trimmed and in lower case")
def _normalize(t, names):
    local, domain = t.word().title(), t.word().upper()
    for raw, wanted in ((f"  {local}.Lovelace@{domain}.Example \n", f"{local.lower()}.lovelace@{domain.lower()}.example"),
                        (f"{local.lower()}@{domain.lower()}.io", f"{local.lower()}@{domain.lower()}.io"),
                        (f"\t{local.upper()}@ÉCOLE.example", f"{local.lower()}@école.example")):
        call = t.attempt(names.normalize_email, raw)
        t.require(call.returned and call.value == wanted, f"`normalize_email({raw!r})` returns `{wanted!r}`",
                  call.seen(), "Do you strip the spaces around it (`strip()`) and lower-case all of it (`lower()`)?")
    return _accounts(t, names)


@ex4.step("`register(email, password, role)` stores the user, the email normalised and the password hashed, and "
          "returns them; the role is `\"organizer\"` unless given")
def _register(t, s):
    s.password = f"{t.word()} {t.word()} {t.rng.randrange(100, 999)}"
    raw = _email(t)
    call, user = _account(t, s, s.names.register, f"  {raw.upper()} ", s.password)
    user_id, email = _user(t, call, user, "the new user", "Does `register` end with `return user`?").values()
    t.require(type(user_id) is int and email == raw, f"the returned user has an `int` id and the email `{raw!r}`",
              f"its id is `{show(user_id)}` and its email `{show(email)}`",
              "Do you store `normalize_email(email)`, and commit before you return the user (the id comes from the "
              "database)?")
    row = dbkit.one(t, USERS, user_id)
    t.require(row is not None, f"a committed row in `users` with id {user_id}", "no such row (was it committed?)",
              "Do you call `db.session.commit()` after `db.session.add(user)`?")
    t.require(row["email"] == raw and row["role"] == "organizer", f"the row holds the email `{raw!r}` and the role "
              "`'organizer'`", f"email `{row['email']!r}`, role `{row['role']!r}`",
              "Do you store the normalised email, and the `role` argument, whose default is `\"organizer\"`?")
    t.require(row["password_hash"] != s.password and _matches(row["password_hash"], s.password)
              and _hashed_with_app(row["password_hash"]), "an argon2id hash of the password, made with the app's "
              "parameters, in `password_hash`", f"`{str(row['password_hash'])[:40]}`",
              "Do you store `hash_password(password)`, never the password itself?")
    s.user = {"id": user_id, "email": raw}
    for n, role in enumerate(("attendee", "admin"), 1):
        email, short = _email(t, n), "x" * 7 + str(n)  # 8 characters: the shortest password allowed
        call, user = _account(t, s, s.names.register, email, short, role)
        _user(t, call, user, "the new user", "Is a password of exactly `MIN_PASSWORD_LENGTH` (8) characters accepted?")
        row = dbkit.rows(t, USERS, email=email)
        t.require(len(row) == 1 and row[0]["role"] == role, f"`register({email!r}, {short!r}, {role!r})` stores a "
                  f"user with the role `{role!r}`", f"rows: `{row}`",
                  "Do you store the `role` given? Is a password of exactly `MIN_PASSWORD_LENGTH` characters accepted?")
    longest = "a" * (254 - len("@b.example")) + "@b.example"
    call = dbkit.attempt(t, s.app, s.names.register, longest, s.password)
    t.require(call.returned and dbkit.count(t, USERS, email=longest) == 1,
              "an email of exactly 254 characters is accepted and stored", call.seen(),
              "Is an email refused only when it is longer than 254 characters?")
    return s


@ex4.step("bad input raises `AccountError`, its `errors` naming each bad field, and stores nothing")
def _refuse(t, s):
    password, taken = s.password, s.user["email"]
    cases = [((f"{t.word()}", password), {"email"}), ((f"{t.word()}@", password), {"email"}),
             ((f"@{t.word()}.example", password), {"email"}), ((f"{t.word()}@{t.word()}", password), {"email"}),
             ((f"{t.word()} x@{t.word()}.example", password), {"email"}), (("", password), {"email"}),
             ((f"{t.word()}@{t.word()}.exa mple", password), {"email"}),
             ((f"{t.word()}\x00@{t.word()}.example", password), {"email"}),
             (("a" * 245 + "@b.example", password), {"email"}), ((None, password), {"email"}), ((42, password), {"email"}),
             ((taken, password), {"email"}), ((f" {taken.upper()}", password), {"email"}),
             ((_email(t, 3), "x" * 7), {"password"}), ((_email(t, 4), ""), {"password"}),
             ((_email(t, 5), None), {"password"}), ((_email(t, 6), 12345678), {"password"}),
             ((_email(t, 7), password, "superuser"), {"role"}), ((_email(t, 8), password, "Organizer"), {"role"}),
             ((_email(t, 9), password, None), {"role"}), ((f"{t.word()}", "short", "boss"), {"email", "password", "role"}),
             ((taken, "short"), {"email", "password"})]
    before = dbkit.count(t, USERS)
    for args, fields in cases:
        shown = ", ".join(repr(a) for a in args)
        call = dbkit.attempt(t, s.app, s.names.register, *args)
        error = t.raises(call, s.names.AccountError, f"`register({shown})` raises `AccountError`",
                         "Do you check each field before you store anything, and raise `AccountError(errors)`?")
        errors = t.get(error.remote, "errors")
        t.require(isinstance(errors, dict) and set(errors) == fields and all(isinstance(m, str) and m for m in
                  errors.values()), f"`errors` names {', '.join(f'`{f}`' for f in sorted(fields))} (each with a message)",
                  f"`errors` is `{show(errors)}`", "Is each field checked on its own, and only the bad ones named? A "
                  "taken email is an email error too, found after `normalize_email`.")
        t.require(dbkit.count(t, USERS) == before, "nothing stored", "a new row in `users`",
                  "Do you raise before `db.session.add(user)`?")
    return s


@ex4.step("two registrations of one email at once: the one that commits second raises `AccountError` too, and "
          "rolls back, so the session goes on working")
def _race(t, s):
    email = _email(t, 40)
    meanwhile = dbkit.insert_op(USERS, {"email": email, "password_hash": _hash(s.password), "role": "organizer"})
    with dbkit.app_context(t, s.app), dbkit.interleave(t, s.check.engine, meanwhile) as other:
        call = t.attempt(s.names.register, email, s.password)
        error = t.raises(call, s.names.AccountError, "another request registered the email between your check and your "
                         "commit", "The database's unique constraint refuses the second row with `IntegrityError`: do "
                         "you catch it around the commit, roll back, and raise `AccountError({\"email\": ...})`?")
        errors = t.get(error.remote, "errors")
        t.require(isinstance(errors, dict) and set(errors) == {"email"}, "`errors` names `email`",
                  f"`errors` is `{show(errors)}`")
        later = t.attempt(s.names.authenticate, email, s.password)
        t.require(later.returned, "the session goes on working: `authenticate(...)` in the same app context answers",
                  later.seen(), "After an `IntegrityError`, a session can do nothing until `db.session.rollback()`: "
                  "do you roll back before you raise?")
    t.require(other.done and dbkit.count(t, USERS, email=email) == 1, "one row for the email, the other request's",
              f"{dbkit.count(t, USERS, email=email)} rows", "Do you roll back the failed insert?")
    return s


@ex4.step("`authenticate(email, password)` returns the user for their password (the email in any case), and `None` "
          "for a wrong password or an unknown email, which costs a password check too")
def _authenticate(t, s):
    password = f"{t.word()}-{t.rng.randrange(10**5, 10**6)}"
    row = _user_row(t, _email(t, 11), password)
    for email in (row["email"], f" {row['email'].upper()} "):
        call, user = _account(t, s, s.names.authenticate, email, password)
        hint = ("Do you look the user up by `normalize_email(email)`, and return them when `verify_password(user."
                "password_hash, password)` is true?")
        found = _user(t, call, user, "the user", hint)
        t.require(found["id"] == row["id"], f"`authenticate({email!r}, <the password>)` returns the user with id "
                  f"{row['id']}", f"it returned the user with id {show(found['id'])}", hint)
    t.require(dbkit.one(t, USERS, row["id"])["password_hash"] == row["password_hash"], "a hash made with the app's "
              "parameters is kept as it is", "a new hash stored", "Do you rehash only when `needs_rehash(...)` is true?")
    for wrong in (password + "x", password.upper(), password[:-1], "", " " + password):
        call = dbkit.attempt(t, s.app, s.names.authenticate, row["email"], wrong)
        t.require(call.returned and call.value is None, f"`authenticate({row['email']!r}, {wrong!r})`, a wrong "
                  "password, returns `None`", call.seen(), "Do you return `None` when `verify_password` is false?")
    t.probe(_count_verifies)
    for email in (_email(t, 12), "", f"{t.word()}\x00@{t.word()}.example", "not an address"):
        before = t.probe(_verified)
        with dbkit.recording(t, s.check.engine) as seen:
            call = dbkit.attempt(t, s.app, s.names.authenticate, email, password)
        t.require(call.returned and call.value is None, f"`authenticate({email!r}, ...)`, no such user, returns "
                  "`None`", call.seen(), "Do you return `None` when no user has the email (and look up only an "
                  "address: `EMAIL.fullmatch(email)`)?")
        looked_up = any(re.search(r"\bFROM users\b", sql, re.I) for sql in seen.sql)
        t.require(looked_up is (email.count("@") == 1 and "\x00" not in email), f"`authenticate({email!r}, ...)` "
                  + ("looks the email up" if "@" in email and "\x00" not in email else "sends no query: it is not an "
                     "address"), "it queried `users`" if looked_up else "no query of `users`",
                  "Do you look a user up only when `EMAIL.fullmatch(email)`? (PostgreSQL refuses to compare text "
                  "holding a NUL character: the lookup itself would fail there.)")
        t.require(t.probe(_verified) > before, f"`authenticate({email!r}, ...)` checks the password against "
                  "`dummy_hash()` anyway", "it answered without checking a password",
                  "An unknown email must cost what a wrong password costs, or the time taken tells which emails have "
                  "accounts: do you call `verify_password(dummy_hash(), password)` before `return None`?")
    return s


@ex4.step("a right password whose hash has other parameters than the app's gets a new hash; a wrong one changes nothing")
def _rehash_on_login(t, s):
    password = f"{t.word()}+{t.rng.randrange(10**5, 10**6)}"
    for n, costs in enumerate(({"time_cost": 2}, {"memory_cost": 32}, {"parallelism": 2})):
        row = _user_row(t, _email(t, 20 + n), password, **costs)
        call = dbkit.attempt(t, s.app, s.names.authenticate, row["email"], password + "!")
        t.require(call.returned and call.value is None, "a wrong password returns `None`", call.seen())
        t.require(dbkit.one(t, USERS, row["id"])["password_hash"] == row["password_hash"],
                  "a wrong password leaves the stored hash as it is", "a new hash stored",
                  "Do you rehash only after `verify_password` said yes? (Only then is the password known.)")
        call, user = _account(t, s, s.names.authenticate, row["email"], password)
        found = _user(t, call, user, "the user", "Does a hash made with other parameters still verify? "
                      "`verify_password` reads them from the hash.")
        t.require(found["id"] == row["id"], f"the user with id {row['id']}", f"the user with id {show(found['id'])}")
        stored = dbkit.one(t, USERS, row["id"])["password_hash"]
        t.require(stored != row["password_hash"] and _hashed_with_app(stored) and _matches(stored, password),
                  f"a new hash of the password, with the app's parameters, committed (the old one was made with "
                  f"{', '.join(f'{k}={v}' for k, v in costs.items())})", f"`{str(stored)[:40]}`",
                  "After a right password, do you check `needs_rehash(user.password_hash)`, store `hash_password("
                  "password)` and commit?")


# --- exercise 5: the login pages ---------------------------------------------------------------------------

ex5 = chapter.exercise(
    "Log in and out",
    requires=[ex1, ex4],
    hints=[
        "`load_user` gets the id as text: `db.session.get(User, int(user_id))` (None when the row is gone). In "
        "`login`, `form.validate_on_submit()` is true for a POST with valid fields and token; then "
        "`services.authenticate(...)` says who it is, `login_user(user, remember=...)` logs them in.",
        "The `next` target is `request.args.get(\"next\")`, checked by `safe_next(..., url_for(\"auth.account\"))`. A "
        "refused login appends the message to `form.form_errors` and falls through to `render_template`. `logout` "
        "calls `logout_user()` (which forgets the remember-me cookie too).",
        "`if form.validate_on_submit():` / `user = services.authenticate(form.email.data, form.password.data)` / `if "
        "user is not None: login_user(user, remember=form.remember.data); return redirect(safe_next(request.args."
        "get(\"next\"), url_for(\"auth.account\")))` / `form.form_errors.append(\"Wrong email or password.\")`; and "
        "`logout_user()`, `flash(...)`, `return redirect(url_for(\"auth.login\"))`.",
    ],
)
ex5.defines("tickethub.auth.routes", functions=["load_user", "login", "logout", "account"], bp=Blueprint)
WRONG = "Wrong email or password."
TOKEN = re.compile(r"<input\b[^>]*\bname=\"csrf_token\"[^>]*>")
ACCOUNT, LOGIN, LOGOUT = "/auth/account", "/auth/login", "/auth/logout"


def _site(t, names) -> State:
    """The learner's app from `create_app()` on the check's database, with cheap hashes; one user's row in it."""
    app = app_from_factory(t, {"TESTING": True, "SQLALCHEMY_DATABASE_URI": t.database_url(),
                               "SQLALCHEMY_ENGINE_OPTIONS": {}, **CHEAP})
    dbkit.create_tables(t, dbkit.learner_db(t))
    s = State(app=app, password=f"{t.word()} {t.word()} {t.rng.randrange(10**3, 10**4)}")
    s.user = _user_row(t, _email(t, 30), s.password)
    return s


def _token(t, client, url: str) -> str:
    """GET a page as a browser does, and read its form's CSRF token."""
    reply = client.get(url)
    t.require(reply.status_code == 200 and reply.mimetype == "text/html", f"`GET {url}` answers 200 with an HTML "
              "page", f"{reply.status_code} ({reply.mimetype or 'no content type'})",
              "Does the view end with `render_template(...)`, whatever happened before?")
    field = TOKEN.search(reply.text)
    value = re.search(r"\bvalue=\"([^\"]+)\"", field.group(0)) if field else None
    t.require(value is not None, f"the page at `{url}` holds its form's CSRF token (`{{{{ form.csrf_token }}}}`)",
              "no `csrf_token` field in it", "Did you keep the given templates, and pass the form to `render_template`?")
    return value.group(1)


def _log_in(t, s, client, email: str, password: str, next_: str | None = None, **fields):
    """POST the login form as a browser does (its token first); the reply."""
    url = LOGIN + (f"?{urlencode({'next': next_})}" if next_ is not None else "")
    data = {"csrf_token": _token(t, client, url), "email": email, "password": password, **fields}
    return client.post(url, data={k: v for k, v in data.items() if v is not None})


def _logged_in(t, client, email: str | None) -> None:
    """Require that the account page shows `email` (logged in), or sends to the login page (`None`)."""
    reply = client.get(ACCOUNT)
    if email is None:
        t.require(reply.status_code == 302 and (reply.location or "").startswith(LOGIN), f"`GET {ACCOUNT}` then "
                  f"sends to the login page (no one is logged in)", f"{reply.status_code}"
                  + (f", `Location: {reply.location}`" if reply.location else ""),
                  "Is `login_user` called only after `authenticate` returned a user?")
    else:
        t.require(reply.status_code == 200 and email in reply.text, f"`GET {ACCOUNT}` then shows the account of "
                  f"`{email}`", f"{reply.status_code}" + (f", `Location: {reply.location}`" if reply.location else
                  " (another account)" if reply.status_code == 200 else ""),
                  "Does `load_user` return the user with the id it is given, `db.session.get(User, int(user_id))`?")


def _cookies(reply) -> dict:
    """The cookies a reply sets, by name: each `Set-Cookie` header's text."""
    return {header.split("=", 1)[0].strip(): header for header in reply.headers.getlist("Set-Cookie")}


@ex5.step("a page that needs a login sends an anonymous visitor to `/auth/login?next=...`, which shows the form")
def _anonymous(t, names):
    s = _site(t, names)
    reply = t.client(s.app).get(ACCOUNT)
    wanted = f"{LOGIN}?{urlencode({'next': ACCOUNT})}"
    t.require(reply.status_code == 302 and reply.location == wanted, f"`GET {ACCOUNT}` answers 302 to `{wanted}`",
              f"{reply.status_code}" + (f", `Location: {reply.location}`" if reply.location else ""),
              "Is `load_user` answering `None` when no one is logged in? (Flask-Login calls it only for a session "
              "that holds an id.)")
    _token(t, t.client(s.app), LOGIN)
    return s


@ex5.step("the right email and password log the user in and redirect to `next` when it is safe, to "
          "`/auth/account` otherwise")
def _login(t, s):
    page = t.rng.randrange(2, 40)
    for next_, wanted in ((f"/events/{page}?page=2", f"/events/{page}?page=2"), (f"//{EVIL}/login", ACCOUNT),
                          (f"https://{EVIL}/", ACCOUNT), (None, ACCOUNT)):
        client = t.client(s.app)
        reply = _log_in(t, s, client, f" {s.user['email'].upper()}", s.password, next_)
        t.require(reply.status_code == 302 and reply.location == wanted, f"a right login with `next={next_}` "
                  f"answers 302 to `{wanted}`", f"{reply.status_code}" + (f", `Location: {reply.location}`"
                  if reply.location else (" and " + WRONG if WRONG in reply.text else "")),
                  "After `login_user(...)`, do you `return redirect(safe_next(request.args.get(\"next\"), "
                  "url_for(\"auth.account\")))`?")
        _logged_in(t, client, s.user["email"])
    return s


@ex5.step(f"a wrong password or an unknown email shows the form again (200) with `{WRONG}`, and logs no one in",
          errors={"AttributeError": "Do you call `authenticate` only when `form.validate_on_submit()` is true? A form "
                                    "sent without an email gives `form.email.data` as `None`."})
def _wrong(t, s):
    unknown = _email(t, 31)
    for email, password, label in ((s.user["email"], s.password + "!", "a wrong password"),
                                   (unknown, s.password, "an unknown email")):
        client = t.client(s.app)
        reply = _log_in(t, s, client, email, password)
        t.require(reply.status_code == 200 and WRONG in reply.text, f"a login with {label} answers 200, the page "
                  f"saying `{WRONG}`", f"{reply.status_code}" + (f", `Location: {reply.location}`" if reply.location
                  else ", without the message"), "When `authenticate` returns `None`, do you add the message to "
                  "`form.form_errors` and show the form again? (One message for both: another would tell which "
                  "emails have accounts.)")
        _logged_in(t, client, None)
    for label, fields in (("no email", {"email": None}), ("no password", {"password": None}),
                          ("an email of 300 characters", {"email": "a" * 290 + "@b.example"}),
                          ("a NUL character in the email", {"email": f"{t.word()}\x00@b.example"})):
        client = t.client(s.app)
        reply = _log_in(t, s, client, **{"email": s.user["email"], "password": s.password, **fields})
        t.require(reply.status_code == 200, f"a login form with {label} answers 200 (the form again)",
                  f"{reply.status_code}" + (f", `Location: {reply.location}`" if reply.location else ""),
                  "Do you log in only when `form.validate_on_submit()` is true, and show the form otherwise?")
        _logged_in(t, client, None)
    return s


@ex5.step("ticking `remember` sets Flask-Login's remember-me cookie (`remember_token`); not ticking it sets none")
def _remember(t, s):
    for fields, wanted in (({"remember": "y"}, True), ({}, False)):
        reply = _log_in(t, s, t.client(s.app), s.user["email"], s.password, **fields)
        cookies = _cookies(reply)
        t.require(reply.status_code == 302 and ("remember_token" in cookies) is wanted,
                  "a login with `remember` ticked sets the cookie `remember_token`" if wanted else
                  "a login without `remember` sets no `remember_token` cookie",
                  f"{reply.status_code}, cookies set: {', '.join(f'`{n}`' for n in cookies) or 'none'}",
                  "Do you pass `remember=form.remember.data` to `login_user`?")
    return s


@ex5.step("`POST /auth/logout` logs the user out, the remember-me cookie too, and redirects to `/auth/login`; a GET "
          "is refused (405)")
def _logout(t, s):
    client = t.client(s.app)
    _log_in(t, s, client, s.user["email"], s.password, remember="y")
    token = _token(t, client, ACCOUNT)
    reply = client.get(LOGOUT)
    t.require(reply.status_code == 405, f"`GET {LOGOUT}` answers 405: logging out changes state, so only a POST "
              "does it", f"{reply.status_code}", "Did you keep `@bp.post(\"/logout\")`?")
    _logged_in(t, client, s.user["email"])
    reply = client.post(LOGOUT, data={"csrf_token": token})
    t.require(reply.status_code == 302 and reply.location == LOGIN, f"`POST {LOGOUT}` answers 302 to `{LOGIN}`",
              f"{reply.status_code}" + (f", `Location: {reply.location}`" if reply.location else ""),
              "Does `logout` end with `return redirect(url_for(\"auth.login\"))`?")
    _logged_in(t, client, None)  # the remember-me cookie, kept, would log the user in again
    page = client.get(LOGIN)
    t.require("You are logged out." in page.text, "the login page then says `You are logged out.`", "it does not",
              "Do you `flash(\"You are logged out.\")` before the redirect?")
    return s


@ex5.step("each request finds the user by the id in the session: each client sees its own account, and a deleted "
          "user is logged out")
def _loader(t, s):
    other = _user_row(t, _email(t, 32), s.password)
    first, second = t.client(s.app), t.client(s.app)
    _log_in(t, s, first, s.user["email"], s.password)
    _log_in(t, s, second, other["email"], s.password)
    _logged_in(t, second, other["email"])
    _logged_in(t, first, s.user["email"])
    dbkit.write(t, dbkit.sql_op("DELETE FROM users WHERE id = :id", {"id": other["id"]}))
    _logged_in(t, second, None)


# --- exercise 6: a test for CSRF --------------------------------------------------------------------------

ex6 = chapter.exercise(
    "A test for CSRF",
    hints=[
        "The given `client` fixture is a browser that has visited no page; `token(client, url)` reads the CSRF token "
        "of the form at `url`, as a browser would send it back. A forged request is a POST without it.",
        "Four things must stay true: a login with the token works (302, and `/auth/account` answers 200 afterwards); a "
        "login without it is refused with 400 and logs no one in; a logout without it is refused with 400 and leaves "
        "the user logged in; and a GET of `/auth/logout` is refused (405).",
        "`def test_a_forged_login_is_refused(client):` / `assert client.post(\"/auth/login\", data={\"email\": EMAIL, "
        "\"password\": PASSWORD}).status_code == 400` / `assert client.get(\"/auth/account\").status_code == 302`; and "
        "a `log_in(client)` helper that posts `{\"csrf_token\": token(client, \"/auth/login\"), ...}` for the others.",
    ],
)
CSRF_TESTS, AUTH, ROUTES = "tests/test_csrf.py", "tickethub/auth/__init__.py", "tickethub/auth/routes.py"
LOGOUT_ROUTE = '@bp.post("/logout")\n'
ex6.tests_catch(CSRF_TESTS, hint=(
    "On the reference, a POST to `/auth/login` or `/auth/logout` without the form's token answers 400, and one with it "
    "works. Do your tests use the given `client` fixture, and read the token with `token(client, url)`?"), accepts=[
    Correct("a refused token gets a page of TicketHub's own (still 400, another text)", AUTH, "    csrf.init_app(app)\n",
            "    csrf.init_app(app)\n    app.register_error_handler(CSRFError, lambda error: (\"<p>This form has expired: "
            "go back, reload the page, and send it again.</p>\", 400))\n",
            more=((AUTH, "from flask_wtf import CSRFProtect\n", "from flask_wtf import CSRFProtect\nfrom flask_wtf.csrf "
                   "import CSRFError\n"),),
            hint="Does a test look for Flask-WTF's own message? The status code, 400, and what the request did (no one "
                 "logged in or out) are what must stay true; the page's text may change."),
], bugs=[
    Bug("CSRF protection is not installed (`csrf.init_app(app)` is gone)", AUTH, "    csrf.init_app(app)\n", "",
        hint="Without `CSRFProtect`, a forged logout works, and a forged login gets the form again with 200. Does a test "
             "assert that a POST without the token answers 400?"),
    Bug("CSRF checks are switched off in the config (`WTF_CSRF_ENABLED = False`)", "tickethub/config.py",
        '    SECRET_KEY = "dev"', '    WTF_CSRF_ENABLED = False\n    SECRET_KEY = "dev"',
        hint="With the checks off, a forged login logs the visitor in. Does a test send a login without the token, and "
             "check both the status and that `/auth/account` still sends to the login page?"),
    Bug("the logout view is exempt from the CSRF check", ROUTES, LOGOUT_ROUTE, LOGOUT_ROUTE + "@csrf.exempt\n",
        more=((ROUTES, "from . import login_manager, services\n", "from . import csrf, login_manager, services\n"),),
        hint="Another site can then log your users out. Does a test log in, send a logout without the token, and assert "
             "400 and that the user is still logged in?"),
    Bug("the login view is exempt from the CSRF check, so only its form's own check is left", ROUTES,
        '@bp.route("/login", methods=["GET", "POST"])\n', '@bp.route("/login", methods=["GET", "POST"])\n@csrf.exempt\n',
        more=((ROUTES, "from . import login_manager, services\n", "from . import csrf, login_manager, services\n"),),
        hint="A forged login then gets the form again with 200, and the next change to the form (or a view without "
             "one) opens it. Does a test assert that a login without the token answers 400?"),
    Bug("logout answers a GET too, so any `<img>` on any page logs the user out", ROUTES, LOGOUT_ROUTE,
        '@bp.route("/logout", methods=["GET", "POST"])\n',
        hint="A GET carries no token. Does a test log in, send `GET /auth/logout`, and assert 405 and that the user is "
             "still logged in?"),
    Bug("the login page's form has no token, so a real login is refused too", "tickethub/templates/auth/login.html",
        "    {{ form.csrf_token }}\n", "",
        hint="A check that refuses everything passes every test of refusals. Does a test log in with the page's token "
             "(`token(client, \"/auth/login\")`) and assert that it works?"),
])

setup, reset = chapter.setup, chapter.reset
