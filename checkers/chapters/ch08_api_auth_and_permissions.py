"""Checks for chapter 08: API auth and permissions (tokens for the API).

The learner's app comes from `create_app()` on the check's own database, with cheap password hashes and a
`JWT_SECRET_KEY` the judge chose: the judge inserts the users itself, asks for tokens as an API client does (JSON
in, JSON out, the token in `Authorization: Bearer`), and decodes each token it gets with PyJWT, knowing the key.
The tokens it sends that the app did not make (expired ones, ones for a deleted user, ones signed with another
key or with none) it forges with PyJWT too: no clock is moved, and no check sleeps.
"""
from __future__ import annotations

import time
import uuid
from types import SimpleNamespace as State

import argon2  # noqa: F401  (imported before the check server forks: checks start warm)
import flask_jwt_extended  # noqa: F401  (the same: the learner's app imports it)
import jwt as pyjwt
from argon2 import PasswordHasher
from flask import Blueprint

from ..engine.judge import show
from ..engine.learner import probe
from ..notebook.api import Bug, Chapter, Correct
from . import dbkit
from .kit import app_from_factory

USES_DATABASE = True  # tests/test_postgres.py runs this chapter's checks and notebook on PostgreSQL too

chapter = Chapter(__name__, "API auth and permissions")
chapter.warm_up(dbkit.warm_up)

AUTH = "/api/v1/auth"
TOKENS, REFRESH, ME = f"{AUTH}/tokens", f"{AUTH}/refresh", f"{AUTH}/me"
PROBLEM = "application/problem+json"
USERS = "users"
ROLES = ("attendee", "organizer", "admin")
CHEAP = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 16, "ARGON2_PARALLELISM": 1}  # hashes in about a millisecond
REFRESH_DAYS = 30


ex1 = chapter.exercise(
    "Tokens for the API",
    hints=[
        "Flask-JWT-Extended asks you for its callbacks: `user_identity_loader` turns the `User` you pass to "
        "`create_access_token(identity=user)` into the token's `sub` (text!), `additional_claims_loader` adds claims, "
        "`user_lookup_loader` turns a valid token back into `current_user`. Each `*_loader` for a refused token "
        "returns a response: `unauthorized(...)`.",
        "`unauthorized` builds the answer from chapter 06's `problem(error)` (a `dict`) for a `werkzeug` "
        "`Unauthorized(detail)`, with `jsonify`, then sets `status_code`, `content_type` (`PROBLEM`) and the header. "
        "`POST /tokens` calls `services.authenticate`; `/refresh` is `@jwt_required(refresh=True)`, `/me` is "
        "`@jwt_required()`.",
        "`return str(user.id)`; `return {\"role\": user.role}`; `return db.session.get(User, int(payload[\"sub\"]))`; "
        "each loader `return unauthorized(\"...\")`; `user = services.authenticate(credentials[\"email\"], "
        "credentials[\"password\"])`, `if user is None: return unauthorized(...)`, then `{\"access_token\": "
        "create_access_token(identity=user), \"refresh_token\": create_refresh_token(identity=user), \"token_type\": "
        "\"Bearer\"}`; `/me` returns `current_user`.",
    ],
)
ex1.defines("tickethub.auth.tokens", functions=["unauthorized", "identity", "claims", "load_user", "missing_token",
                                                "invalid_token", "expired_token", "unknown_user"], bp=Blueprint)


def _email(t, n: int = 0) -> str:
    return f"{t.word()}.{t.word()}{n}{t.rng.randrange(10**4)}@{t.word()}.example"


def _password(t) -> str:
    return f"{t.word()} {t.word()} {t.rng.randrange(10**3, 10**4)}"


def _user(t, s, role: str, n: int) -> dict:
    """A user's row, inserted by the judge with a hash it made itself; the row, its id and its password."""
    password = _password(t)
    row = {"email": _email(t, n), "password_hash": PasswordHasher(time_cost=1, memory_cost=16, parallelism=1)
           .hash(password), "role": role}
    return {**row, "id": dbkit.insert(t, USERS, row)[0], "password": password}


def _site(t) -> State:
    """The learner's app from `create_app()` with the judge's key and lifetimes, on the check's database."""
    s = State(secret=f"check-{t.word()}-{t.rng.randrange(10**8, 10**9)}-{t.word()}-{t.word()}-key",
              minutes=t.rng.randrange(5, 60))
    s.app = app_from_factory(t, {"TESTING": True, "SQLALCHEMY_DATABASE_URI": t.database_url(),
                                 "SQLALCHEMY_ENGINE_OPTIONS": {}, **CHEAP, "JWT_SECRET_KEY": s.secret,
                                 "JWT_ACCESS_TOKEN_EXPIRES": s.minutes * 60,
                                 "JWT_REFRESH_TOKEN_EXPIRES": REFRESH_DAYS * 86400})
    dbkit.create_tables(t, dbkit.learner_db(t))
    s.users = [_user(t, s, role, n) for n, role in enumerate(ROLES)]
    return s


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _seen(reply) -> str:
    """A reply as the feedback shows it: status, content type, challenge, and the start of the body."""
    challenge = reply.headers.get("WWW-Authenticate")
    return (f"{reply.status_code}, `Content-Type: {reply.content_type}`"
            + (f", `WWW-Authenticate: {challenge}`" if challenge else ", no `WWW-Authenticate` header")
            + reply.excerpt())


def _challenged(reply) -> bool:
    challenge = reply.headers.get("WWW-Authenticate") or ""
    return challenge.split(" ", 1)[0].split(",", 1)[0] == "Bearer"


def _unauthorized(t, reply, what: str, hint: str) -> dict:
    """Require a 401 in the house format with a Bearer challenge; the problem details."""
    body = reply.get_json(silent=True) if reply.mimetype == PROBLEM else None
    t.require(reply.status_code == 401 and isinstance(body, dict) and body.get("status") == 401
              and type(body.get("title")) is str and type(body.get("detail")) is str and _challenged(reply)
              and "access_token" not in reply.text,
              f"{what} answers 401 with problem details (`{PROBLEM}`, `status` 401, a `title` and a `detail`) and "
              "`WWW-Authenticate: Bearer`", _seen(reply), hint)
    return body


def _decode(t, token, secret: str, what: str) -> dict:
    """The claims of a token the app made, verified with the judge's key; a failed step if it is not one."""
    t.require(type(token) is str, f"{what}, a `str`", f"`{show(token)}`",
              "Do you return what `create_access_token` and `create_refresh_token` return?")
    try:
        header = pyjwt.get_unverified_header(token)
        claims = pyjwt.decode(token, secret, algorithms=["HS256"])
    except pyjwt.PyJWTError as error:
        t.fail(f"{what}, a JWT signed with the app's `JWT_SECRET_KEY` (HS256)", f"PyJWT says: {error}",
               "Do you make it with Flask-JWT-Extended's `create_access_token` / `create_refresh_token`?")
    t.require(header.get("alg") == "HS256", f"{what} signed with HS256", f"`alg` is `{header.get('alg')}`")
    return claims


def _forge(s, user_id, **changes) -> str:
    """An access token as Flask-JWT-Extended makes it, signed with the judge's key (or `key`), claims changed."""
    now = int(time.time())
    claims = {"fresh": False, "iat": now, "jti": str(uuid.uuid4()), "type": "access", "sub": str(user_id),
              "nbf": now, "exp": now + 600, "role": "admin"}
    key, algorithm = changes.pop("key", s.secret), changes.pop("algorithm", "HS256")
    claims.update(changes)
    return pyjwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


def _tokens(t, s, user: dict, email: str | None = None) -> dict:
    """POST the user's email and password to /tokens; the JSON body, its shape checked."""
    reply = t.client(s.app).post(TOKENS, json={"email": user["email"] if email is None else email,
                                               "password": user["password"]})
    body = t.json(reply, 200, "the tokens", "Does `post` return the dict of tokens when `services.authenticate(...)` "
                  "returned a user? (200: a token is not a resource with a URL of its own, so nothing is created.)")
    t.require(isinstance(body, dict) and set(body) == {"access_token", "refresh_token", "token_type"}
              and body["token_type"] == "Bearer", "the JSON `{\"access_token\": ..., \"refresh_token\": ..., "
              "\"token_type\": \"Bearer\"}`", f"`{show(body)}`",
              "Does `post` return exactly these three keys, `token_type` being `\"Bearer\"`?")
    return body


def _claims_ok(t, claims: dict, user: dict, kind: str, lifetime: int, what: str) -> None:
    t.require(claims.get("sub") == str(user["id"]), f"{what} names the user: `sub` is `{str(user['id'])!r}`, the "
              "id as text", f"`sub` is `{show(claims.get('sub'))}`",
              "Does `identity(user)` return `str(user.id)`? (PyJWT refuses a `sub` that is not text.)")
    t.require(claims.get("type") == kind, f"{what} is of `type` `{kind!r}`", f"`type` is `{show(claims.get('type'))}`",
              "Do you make the access token with `create_access_token` and the refresh token with "
              "`create_refresh_token`?")
    t.require(claims.get("role") == user["role"], f"{what} carries the user's role: `role` is `{user['role']!r}`",
              f"`role` is `{show(claims.get('role'))}`" if "role" in claims else "no `role` claim",
              "Does `claims(user)` return `{\"role\": user.role}`?")
    exp, iat = claims.get("exp"), claims.get("iat")
    lived = exp - iat if type(exp) is int and type(iat) is int else None
    t.require(lived == lifetime, f"{what} lives as long as the config says: `exp - iat` is {lifetime} seconds",
              f"`exp - iat` is `{show(lived)}`",
              "Do you leave the lifetime to the config (`JWT_ACCESS_TOKEN_EXPIRES`, `JWT_REFRESH_TOKEN_EXPIRES`), "
              "without an `expires_delta` of your own?")


@ex1.step("`POST /api/v1/auth/tokens` with a user's email and password answers 200 with an access and a refresh "
          "token, signed with `JWT_SECRET_KEY`, whose `sub` is the user's id as text and whose `role` is theirs",
          errors={"TypeError": lambda e: "Does `identity(user)` return `str(user.id)`, and `claims(user)` a `dict`?"
                  if "JSON serializable" in e.message or "sub" in e.message else None})
def _issue(t, names):
    s = _site(t)
    for user in s.users:
        email = f"  {user['email'].upper()} " if user["role"] == "organizer" else user["email"]
        body = _tokens(t, s, user, email)
        _claims_ok(t, _decode(t, body["access_token"], s.secret, "the access token"), user, "access", s.minutes * 60,
                   "the access token")
        _claims_ok(t, _decode(t, body["refresh_token"], s.secret, "the refresh token"), user, "refresh",
                   REFRESH_DAYS * 86400, "the refresh token")
        user["tokens"] = body
    return s


@ex1.step("a wrong password or an unknown email answers 401, the same problem details for both; bad input gets the "
          "API's error format (400, 415, 422), never a token")
def _wrong(t, s):
    user = s.users[0]
    hint = ("When `services.authenticate(...)` returns `None`, do you `return unauthorized(...)`, with one message for "
            "both mistakes (another would tell which emails have accounts)?")
    answers = []
    for label, email, password in (("a wrong password", user["email"], user["password"] + "!"),
                                   ("an unknown email", _email(t, 9), user["password"]),
                                   ("a password of another user", user["email"], s.users[1]["password"]),
                                   ("an email of 100 000 characters", "a" * 100_000 + "@b.example", "x" * 100_000)):
        reply = t.client(s.app).post(TOKENS, json={"email": email, "password": password})
        body = _unauthorized(t, reply, f"`POST {TOKENS}` with {label}", hint)
        answers.append((label, body))
    (first, wrong), (second, unknown) = answers[:2]
    t.require(wrong == unknown, f"the same answer for {first} and for {second}",
              f"`{show(wrong)}` and `{show(unknown)}`", hint)
    cases = [("no body", {}, 422), ("`{}`", {"json": {}}, 422),
             ("no password", {"json": {"email": user["email"]}}, 422),
             ("no email", {"json": {"password": user["password"]}}, 422),
             ("an email that is a number", {"json": {"email": 42, "password": user["password"]}}, 422),
             ("a password that is `null`", {"json": {"email": user["email"], "password": None}}, 422),
             ("a list", {"json": [user["email"], user["password"]]}, 422),
             ("a NUL character in the email", {"json": {"email": user["email"] + "\x00",
                                                         "password": user["password"]}}, 422),
             ("an unknown field", {"json": {"email": user["email"], "password": user["password"], "role": "admin"}},
              422),
             ("malformed JSON", {"data": '{"email": ', "content_type": "application/json"}, 400),
             ("a form instead of JSON", {"data": {"email": user["email"], "password": user["password"]}}, 415)]
    for label, kwargs, status in cases:
        reply = t.client(s.app).post(TOKENS, **kwargs)
        body = reply.get_json(silent=True) if reply.mimetype == PROBLEM else None
        t.require(reply.status_code == status and isinstance(body, dict) and body.get("status") == status
                  and "access_token" not in reply.text, f"`POST {TOKENS}` with {label} answers {status} with "
                  "problem details", _seen(reply), "Did you keep the given `@bp.arguments(CredentialsSchema)`? It "
                  "reads and validates the body before `post` runs.")
    return s


@ex1.step("`GET /api/v1/auth/me` with an access token answers 200 with the user it names: `{\"id\", \"email\", "
          "\"role\"}`")
def _me(t, s):
    hint = ("Is `get` `@jwt_required()`, returning `current_user`, which `load_user` finds by the token's `sub`: "
            "`db.session.get(User, int(payload[\"sub\"]))`?")
    forged = {s.users[1]["id"]: _forge(s, s.users[1]["id"], role=s.users[1]["role"])}
    for user in s.users:
        for label, token in (("the access token it got", user["tokens"]["access_token"]),
                             ("an access token the check made", forged.get(user["id"]))):
            if token is None:
                continue
            reply = t.client(s.app).get(ME, headers=_bearer(token))
            body = t.json(reply, 200, f"the user, for {label}", hint)
            wanted = {"id": user["id"], "email": user["email"], "role": user["role"]}
            t.require(body == wanted and type(body.get("id")) is int, f"`GET {ME}` with {label} answers `{wanted}`",
                      f"`{show(body)}`", hint)
    return s


@ex1.step("every refused token answers 401 with problem details and `WWW-Authenticate: Bearer`: no token, a "
          "malformed one, another key, `alg: none`, expired, a refresh token, a user who is gone",
          errors={"AttributeError": lambda e: "Is each protected view `@jwt_required(...)` without `optional=True`? "
                  "Without a token, `current_user` is `None`." if "'NoneType'" in e.message else None})
def _refused(t, s):
    user, other = s.users[0], s.users[2]
    now = int(time.time())
    gone = _user(t, s, "organizer", 7)
    reply = t.client(s.app).post(TOKENS, json={"email": gone["email"], "password": gone["password"]})
    gone_token = (reply.get_json(silent=True) or {}).get("access_token") if reply.status_code == 200 else None
    dbkit.write(t, dbkit.sql_op("DELETE FROM users WHERE id = :id", {"id": gone["id"]}))
    missing = "Is `get` `@jwt_required()`, and does `missing_token` return `unauthorized(...)`?"
    invalid = "Does `invalid_token` return `unauthorized(...)`? (Flask-JWT-Extended's own answer is a 422.)"
    cases = [
        ("no `Authorization` header", {}, missing),
        ("`Authorization: Bearer` and no token", {"Authorization": "Bearer"}, invalid),
        ("`Authorization: Basic ...`", {"Authorization": "Basic YWRhOnNlY3JldA=="}, missing),
        ("a token that is not a JWT", _bearer(t.word()), invalid),
        ("two words after `Bearer`", {"Authorization": f"Bearer {t.word()} {t.word()}"}, invalid),
        ("a token of 100 000 characters", _bearer("a" * 100_000), invalid),
        ("a token signed with another key", _bearer(_forge(s, user["id"], key=s.secret[::-1])), invalid),
        ("an `alg: none` token (no signature)", _bearer(_forge(s, other["id"], key=None, algorithm="none")), invalid),
        ("a token whose `sub` is a number", _bearer(_forge(s, user["id"], sub=user["id"])), invalid),
        ("a token valid only from the future (`nbf`)", _bearer(_forge(s, user["id"], nbf=now + 3600)), invalid),
        ("a token without `sub`", _bearer(_forge(s, user["id"], sub=None)), invalid),
        ("the refresh token", _bearer(user["tokens"]["refresh_token"]), invalid),
        ("a token that expired a second ago", _bearer(_forge(s, user["id"], iat=now - 901, nbf=now - 901,
                                                             exp=now - 1)),
         "Does `expired_token` return `unauthorized(...)`?"),
        ("a token that expired a day ago", _bearer(_forge(s, other["id"], iat=now - 86400, nbf=now - 86400,
                                                          exp=now - 86400 + 900)),
         "Does `expired_token` return `unauthorized(...)`?"),
        ("a token for a user id that does not exist", _bearer(_forge(s, 10**6 + user["id"])),
         "Does `load_user` return `None` for an id with no row, and `unknown_user` return `unauthorized(...)`?"),
    ]
    if gone_token:
        cases.append(("the token of a user deleted since", _bearer(gone_token),
                      "Does `load_user` look the user up on every request, and `unknown_user` return `unauthorized(...)`?"))
    for label, headers, hint in cases:
        reply = t.client(s.app).get(ME, headers=headers)
        _unauthorized(t, reply, f"`GET {ME}` with {label}", hint)
    refresh_cases = [("no token", {}), ("the access token", _bearer(user["tokens"]["access_token"])),
                     ("a refresh token that expired", _bearer(_forge(s, user["id"], type="refresh", exp=now - 1,
                                                                     iat=now - 60, nbf=now - 60))),
                     ("a refresh token signed with another key", _bearer(_forge(s, user["id"], type="refresh",
                                                                               key=s.secret + "!")))]
    for label, headers in refresh_cases:
        reply = t.client(s.app).post(REFRESH, headers=headers)
        _unauthorized(t, reply, f"`POST {REFRESH}` with {label}",
                      "Is `post` `@jwt_required(refresh=True)`, which accepts a refresh token and nothing else?")
    return s


@ex1.step("`POST /api/v1/auth/refresh` with a refresh token answers 200 with a new access token, carrying the user's "
          "role as it is now")
def _refresh(t, s):
    hint = ("Is `post` `@jwt_required(refresh=True)`, returning `{\"access_token\": create_access_token(identity="
            "current_user), \"token_type\": \"Bearer\"}`?")
    for n, user in enumerate(s.users):
        if n == 1:  # the role changes after the login: a new access token says what it is now
            user["role"] = "admin" if user["role"] != "admin" else "attendee"
            dbkit.update(t, USERS, {"id": user["id"]}, {"role": user["role"]})
        reply = t.client(s.app).post(REFRESH, headers=_bearer(user["tokens"]["refresh_token"]))
        body = t.json(reply, 200, "a new access token", hint)
        t.require(isinstance(body, dict) and set(body) == {"access_token", "token_type"}
                  and body["token_type"] == "Bearer", "the JSON `{\"access_token\": ..., \"token_type\": \"Bearer\"}`",
                  f"`{show(body)}`", hint)
        claims = _decode(t, body["access_token"], s.secret, "the new access token")
        _claims_ok(t, claims, user, "access", s.minutes * 60, "the new access token" + (
            ", made after the user's role changed," if n == 1 else ""))
        me = t.client(s.app).get(ME, headers=_bearer(body["access_token"]))
        t.json(me, 200, "the user, for the new access token", hint)
    return s


@ex1.step("the three routes are in the OpenAPI document, each with its 200 schema and its 401")
def _documented(t, s):
    doc = t.json(t.client(s.app).get("/api/v1/openapi.json"), 200, "the OpenAPI document",
                 "Did you keep the given `tokens.bp`, registered by `init_auth`?")
    paths = doc.get("paths") if isinstance(doc, dict) else None
    for path, method in ((TOKENS, "post"), (REFRESH, "post"), (ME, "get")):
        operation = ((paths or {}).get(path) or {}).get(method)
        responses = (operation or {}).get("responses") or {}
        ok = "200" in responses and "401" in responses and "schema" in str(responses["200"])
        t.require(ok, f"`{method.upper()} {path}` documented with a 200 response and its schema, and a 401",
                  f"responses: `{sorted(responses)}`" if operation else "no such operation in the document",
                  "Did you keep the given `@bp.response(200, ...)` and `@bp.alt_response(401, ...)` decorators?")



# --- exercise 2: who may do what ------------------------------------------------------------------------

ex2 = chapter.exercise(
    "Who may do what",
    requires=[ex1],
    hints=[
        "`can` reads one cell of `POLICY`: the rule for `action` and `user.role` (`DENY` when either is missing: "
        "`.get(..., {})` and `.get(..., DENY)`). `ALLOW` is yes, `DENY` is no, `OWNER` is yes only for an object "
        "whose `owner_id` is the user's `id`.",
        "In `wrapper`, `current_user` is the token's user (`@jwt_required()` already refused a request without a "
        "valid token). Load the object first when there is a `load` (it answers 404 itself), ask `can`, and "
        "`abort(403, message=...)` on a no; otherwise call the view with the arguments it was given.",
        "`rule = POLICY.get(action, {}).get(user.role, DENY)`; `if rule == OWNER: return obj is not None and "
        "obj.owner_id == user.id`; `return rule == ALLOW`. In `wrapper`: `obj = load(**kwargs) if load else None`; "
        "`if not can(current_user, action, obj): abort(403, message=...)`; `return view(*args, **kwargs)`.",
    ],
)
ex2.defines("tickethub.auth.policy", functions=["can", "requires"])
ALLOW, OWNER, DENY = "allow", "owner", "deny"
POLICY = {  # what the exercise's text states, the judge's own copy
    "event:create": {"attendee": DENY, "organizer": ALLOW, "admin": ALLOW},
    "event:update": {"attendee": DENY, "organizer": OWNER, "admin": ALLOW},
    "event:delete": {"attendee": DENY, "organizer": OWNER, "admin": ALLOW},
    "report:read": {"attendee": DENY, "organizer": ALLOW, "admin": ALLOW},
}
EVENTS = "/api/v1/events/"


@probe
def _thing(**attributes):
    """An object with these attributes, in the learner's process: a user or an event as `can` reads them."""
    return State(**attributes)


def _expected(role: str, action: str, user_id: int, owner_id) -> bool:
    rule = POLICY.get(action, {}).get(role, DENY)
    return rule == ALLOW or (rule == OWNER and owner_id is not None and owner_id == user_id)


@ex2.step("`can(user, action, obj)` answers what `POLICY` says for every role, action and object: `OWNER` only for "
          "the user's own, and no for an unknown action or role")
def _can(t, names):
    user_id = t.rng.randrange(2, 10**5)
    objects = {"no object": None, "their own event": user_id, "another user's event": user_id + 1,
               "an event with no owner": "none"}
    for role in (*ROLES, "superuser"):
        user = t.probe(_thing, role=role, id=user_id)
        for action in (*POLICY, "event:publish"):
            for label, owner in objects.items():
                obj = None if owner is None else t.probe(_thing, owner_id=None if owner == "none" else owner)
                wanted = _expected(role, action, user_id, None if owner in (None, "none") else owner)
                call = t.attempt(names.can, user, action, obj)
                t.require(call.returned and call.value is wanted, f"`can(<{role} {user_id}>, {action!r}, <{label}>)` "
                          f"returns `{wanted}`", call.seen(),
                          "Do you read `POLICY.get(action, {}).get(user.role, DENY)`, and allow `OWNER` only when "
                          "`obj` is not `None` and `obj.owner_id == user.id`?")
    return names


def _event_row(t, owner_id) -> int:
    row = {"name": f"{t.word().title()} night", "capacity": 50, "seats_left": 50, "owner_id": owner_id}
    return dbkit.insert(t, "events", row)[0]


@ex2.step("through the API, for every role, action and owner: 401 without a token, 404 for no such event, 403 for "
          "a role (or a non-owner) that may not, and the change made for one that may")
def _matrix(t, names):
    s = _site(t)
    s.users.append(_user(t, s, "organizer", 5))  # another organizer: a non-owner
    people = {"an attendee": s.users[0], "the owner, an organizer": s.users[1], "another organizer": s.users[3],
              "an admin": s.users[2], "no one (no token)": None}
    owner = s.users[1]["id"]
    for who, user in people.items():
        headers = _bearer(_forge(s, user["id"])) if user else {}
        role = user["role"] if user else None
        client = t.client(s.app)
        # create
        name = f"{t.word().title()} {t.rng.randrange(100)}"
        reply = client.post(EVENTS, json={"name": name, "capacity": 20}, headers=headers)
        may = user is not None and _expected(role, "event:create", user["id"], None)
        wanted = 201 if may else (401 if user is None else 403)
        _answered(t, reply, wanted, f"`POST {EVENTS}` by {who}")
        if may:
            rows = dbkit.rows(t, "events", name=name)
            t.require(len(rows) == 1 and rows[0]["owner_id"] == user["id"], f"the new event owned by {who} "
                      f"(`owner_id` {user['id']})", f"rows: `{rows}`", "Do you call the view as it was called, "
                      "`view(*args, **kwargs)`? (The given `post` stores `current_user.id` as the owner.)")
        # update and delete, on the owner's event and on one with no owner, and on no event at all
        for label, owner_id in (("the owner's event", owner), ("an event with no owner", None)):
            for action, method in (("event:update", "patch"), ("event:delete", "delete")):
                event_id = _event_row(t, owner_id)
                may = user is not None and _expected(role, action, user["id"], owner_id)
                wanted = (200 if method == "patch" else 204) if may else (401 if user is None else 403)
                kwargs = {"json": {"name": "Renamed"}} if method == "patch" else {}
                reply = getattr(client, method)(f"{EVENTS}{event_id}", headers=headers, **kwargs)
                what = f"`{method.upper()} {EVENTS}{event_id}` ({label}) by {who}"
                _answered(t, reply, wanted, what)
                row = dbkit.one(t, "events", event_id)
                changed = row is None if method == "delete" else (row or {}).get("name") == "Renamed"
                t.require(changed is may, f"{what}: the event {'changed' if may else 'left as it was'}",
                          f"it was {'changed' if changed else 'left as it was'}",
                          "Do you call the view only after `can(...)` said yes, and `abort(403)` before it otherwise?")
        missing = 10**6 + t.rng.randrange(1000)
        reply = client.patch(f"{EVENTS}{missing}", json={"name": "Renamed"}, headers=headers)
        _answered(t, reply, 401 if user is None else 404, f"`PATCH {EVENTS}{missing}` (no such event) by {who}")


def _answered(t, reply, status: int, what: str) -> None:
    body = reply.get_json(silent=True)
    problem = status >= 400
    t.require(reply.status_code == status and (not problem or (reply.mimetype == PROBLEM and isinstance(body, dict)
              and body.get("status") == status)), f"{what} answers {status}" + (" with problem details" if problem
              else ""), _seen(reply),
              "Is the order: a token (`@jwt_required()`, 401), then the event (`load(**kwargs)`, 404), then "
              "`can(current_user, action, obj)` (403 with `abort(403, ...)`)?")


# --- exercise 3: a test for tokens --------------------------------------------------------------------------

ex3 = chapter.exercise(
    "A test for tokens",
    hints=[
        "Log in inside `with time_machine.travel(T0, tick=False) as clock:`, use the token, then `clock.shift(...)` "
        "and use it again: the app's clock, and PyJWT's, moved with it.",
        "A lifetime has two edges: the token must still work just before 15 minutes (`timedelta(minutes=14, "
        "seconds=59)`) and be refused at 15. Check how it is refused (401, `application/problem+json`, a "
        "`WWW-Authenticate` that starts with `Bearer`), and shift days for the refresh token.",
        "`clock.shift(timedelta(minutes=14, seconds=59))`; `assert me(client, access).status_code == 200`; "
        "`clock.shift(timedelta(seconds=1))`; `reply = me(client, access)`; `assert reply.status_code == 401`; "
        "`assert reply.mimetype == \"application/problem+json\"`; `assert reply.headers[\"WWW-Authenticate\"]."
        "startswith(\"Bearer\")`; and `clock.shift(timedelta(days=29))` before the refresh.",
    ],
)
TOKEN_TESTS, CONFIG_PY, TOKENS_PY = "tests/test_tokens.py", "tickethub/config.py", "tickethub/auth/tokens.py"
ACCESS_LIFETIME = "    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)\n"
REFRESH_LIFETIME = "    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=30)\n"
EXPIRED = '    return unauthorized("This token has expired.")\n'
ex3.tests_catch(TOKEN_TESTS, hint=(
    "On the reference, an access token works for 15 minutes and is refused with 401 at 15, and a refresh token works "
    "for 30 days. Do your tests log in inside `time_machine.travel(T0, tick=False)` and move the clock with "
    "`clock.shift(...)`?"), accepts=[
    Correct("a refused token's challenge names a realm (`Bearer realm=\"tickethub\"`), an expired one is worded "
            "otherwise, and tokens carry the email too", TOKENS_PY,
            'response.headers["WWW-Authenticate"] = "Bearer"',
            'response.headers["WWW-Authenticate"] = \'Bearer realm="tickethub"\'',
            more=((TOKENS_PY, EXPIRED, '    return unauthorized("Your token is too old: refresh it.")\n'),
                  (TOKENS_PY, '    return {"role": user.role}\n', '    return {"role": user.role, "email": user.email}\n')),
            hint="Does a test compare the whole `WWW-Authenticate` header, a `detail`'s words, or every claim? What "
                 "must stay true is 401, problem details, a challenge that starts with `Bearer`, and the `role` claim."),
], bugs=[
    Bug("access tokens live a second too long, 15 minutes and 1 second", CONFIG_PY, ACCESS_LIFETIME,
        "    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15, seconds=1)\n",
        hint="Does a test move the clock to exactly 15 minutes after the login, and assert 401 there?"),
    Bug("access tokens live 10 minutes, not 15", CONFIG_PY, ACCESS_LIFETIME,
        "    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=10)\n",
        hint="A lifetime has two edges: does a test use the token just before 15 minutes, and assert 200?"),
    Bug("an hour of leeway: an expired token is still accepted for an hour", CONFIG_PY, REFRESH_LIFETIME,
        REFRESH_LIFETIME + "    JWT_DECODE_LEEWAY = 3600\n",
        hint="The token's `exp` is right; the check of it is lax. Does a test use the token after 15 minutes?"),
    Bug("an expired token is answered 422, Flask-JWT-Extended's kind of answer for a bad token", TOKENS_PY, EXPIRED,
        '    return {"msg": "Token has expired"}, 422\n',
        hint="Does a test assert that an expired token gets 401, not just \"not 200\"?"),
    Bug("an expired token is answered 401 with a challenge, but with `{\"msg\": ...}` as `application/json`",
        TOKENS_PY, EXPIRED, '    return {"msg": "Token has expired"}, 401, {"WWW-Authenticate": "Bearer"}\n',
        hint="Does a test check that the expired token's answer is problem details, `application/problem+json`?"),
    Bug("an expired token is answered with problem details but no `WWW-Authenticate` challenge", TOKENS_PY, EXPIRED,
        '    response = unauthorized("This token has expired.")\n    del response.headers["WWW-Authenticate"]\n'
        "    return response\n",
        hint="Does a test assert that the expired token's answer has a `WWW-Authenticate` header starting with "
             "`Bearer`?"),
    Bug("an expired token is answered 403, problem details and challenge included", TOKENS_PY, EXPIRED,
        '    response = unauthorized("This token has expired.")\n    response.status_code = 403\n'
        "    return response\n",
        hint="Does a test assert the status of the expired token's answer, 401?"),
    Bug("a refresh token is accepted as an access token", TOKENS_PY, "    @jwt_required()\n",
        "    @jwt_required(verify_type=False)\n",
        hint="Does a test send the refresh token to `/api/v1/auth/me` and assert 401?"),
    Bug("refresh tokens expire with the access token, after 15 minutes", CONFIG_PY, REFRESH_LIFETIME,
        "    JWT_REFRESH_TOKEN_EXPIRES = timedelta(minutes=15)\n",
        hint="A refresh token is for later: does a test refresh after the access token expired (days later)?"),
    Bug("`/refresh` answers a new refresh token as its `access_token`", TOKENS_PY,
        '{"access_token": create_access_token(identity=current_user)',
        '{"access_token": create_refresh_token(identity=current_user)',
        hint="Does a test use the access token that `/refresh` answered, on `/me`?"),
    Bug("tokens carry no role", TOKENS_PY, '    return {"role": user.role}\n', "    return {}\n",
        hint="`/me` reads the role from the database; does a test read the token's own `role` claim, with "
             "`decode_token`?"),
])


setup, reset = chapter.setup, chapter.reset
