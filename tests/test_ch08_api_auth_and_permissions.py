"""Do chapter 08's checks accept right answers and reject wrong ones?"""

import pytest

from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "08-api-auth-and-permissions"
TOKENS = "tickethub/auth/tokens.py"
UNAUTHORIZED = '''    response = jsonify(problem(Unauthorized(detail)))
    response.status_code = 401
    response.content_type = PROBLEM
    response.headers["WWW-Authenticate"] = "Bearer"  # RFC 9110: a 401 names the scheme that would be accepted
    return response
'''
LOGIN = '''        user = services.authenticate(credentials["email"], credentials["password"])
        if user is None:  # one answer for both mistakes: another would tell which emails have accounts
            return unauthorized("Wrong email or password.")
        return {"access_token": create_access_token(identity=user),
                "refresh_token": create_refresh_token(identity=user), "token_type": "Bearer"}
'''
LOOKUP = 'return db.session.get(User, int(payload["sub"]))'
REFRESH_VIEW = '        return {"access_token": create_access_token(identity=current_user), "token_type": "Bearer"}'


def test_tokens_alternative_passes(project):
    """Do tokens answered with `make_response`, a challenge with a realm and an error, a user found with `select`,
    and a login that aborts through a helper of its own, pass?"""
    p = (project(CHAPTER)
         .edit(TOKENS, UNAUTHORIZED, '''    from flask import make_response

    body = problem(Unauthorized(detail))
    return make_response(body, 401, {"Content-Type": "application/problem+json",
                                     "WWW-Authenticate": 'Bearer realm="tickethub", error="invalid_token"'})
''')
         .edit(TOKENS, LOOKUP, 'return db.session.scalar(db.select(User).where(User.id == int(payload["sub"])))')
         .edit(TOKENS, "    return str(user.id)", '    return f"{user.id}"')
         .edit(TOKENS, LOGIN, '''        user = services.authenticate(credentials["email"], credentials["password"])
        if not user:
            return unauthorized("The email or the password is wrong.")
        tokens = dict(token_type="Bearer")
        tokens["refresh_token"] = create_refresh_token(user)
        tokens["access_token"] = create_access_token(user)
        return jsonify(tokens)
''')
         .edit(TOKENS, '@jwt_required(refresh=True)', '@jwt_required(refresh=True, locations=["headers"])')
         .edit(TOKENS, REFRESH_VIEW, '        return jsonify(access_token=create_access_token(current_user), '
                                     'token_type="Bearer")'))
    assert_outcome(p.check("ex1"), Outcome.PASS)


@pytest.mark.parametrize("old, new, expected", [
    # `unauthorized`: status 401
    ("    response.status_code = 401\n", "    response.status_code = 403\n", "403, `Content-Type"),
    # ... the body `problem(Unauthorized(detail))`
    ("jsonify(problem(Unauthorized(detail)))", 'jsonify({"msg": detail})', "with problem details"),
    ("    response = jsonify(problem(Unauthorized(detail)))", "    from werkzeug.exceptions import Forbidden\n"
     "    response = jsonify(problem(Forbidden(detail)))", "with problem details"),
    # ... the content type `PROBLEM`
    ("    response.content_type = PROBLEM\n", "", "`Content-Type: application/json`"),
    # ... and `WWW-Authenticate: Bearer`
    ('    response.headers["WWW-Authenticate"] = "Bearer"', "   ", "no `WWW-Authenticate` header"),
    ('response.headers["WWW-Authenticate"] = "Bearer"', 'response.headers["WWW-Authenticate"] = "Basic"',
     "`WWW-Authenticate: Basic`"),
    # `identity(user)`: the user's id as text
    ("    return str(user.id)", "    return user.id", "Subject must be a string"),
    ("    return str(user.id)", "    return user.email", "`sub` is"),
    # `claims(user)`: `{"role": user.role}`
    ('    return {"role": user.role}', "    return {}", "no `role` claim"),
    ('    return {"role": user.role}', '    return {"role": "organizer"}', "carries the user's role"),
    ('    return {"role": user.role}', '    return {"roles": [user.role]}', "no `role` claim"),
    # `load_user`: the user whose id is `sub`
    (LOOKUP, "return db.session.scalar(db.select(User).order_by(User.id))", "`GET /api/v1/auth/me` with the access token it got answers `{"),
    # ... or `None`
    (LOOKUP, 'return db.session.get(User, int(payload["sub"])) or db.session.scalar(db.select(User))',
     "a user id that does not exist"),
    # the four callbacks each answer `unauthorized(...)`
    ('    return unauthorized("Send an access token: `Authorization: Bearer <token>`.")',
     '    return {"msg": reason}, 401', "with no `Authorization` header"),
    ('    return unauthorized(f"This token is invalid: {reason}.")', '    return {"msg": reason}, 422',
     "`Authorization: Bearer` and no token answers 401"),
    ('    return unauthorized(f"This token is invalid: {reason}.")',
     '    return unauthorized(reason) if "Signature" not in reason else ({"msg": reason}, 422)', "another key"),
    ('    return unauthorized("This token has expired.")', '    return {"msg": "Token has expired"}, 401',
     "expired a second ago"),
    ('    return unauthorized("This token\'s user no longer exists.")',
     '    return {"msg": "no such user"}, 404', "a user id that does not exist"),
    # `POST /tokens`: `services.authenticate`, 200 with the three keys
    ('"token_type": "Bearer"}\n\n\n@bp.route', '"token_type": "Bearer"}, 201\n\n\n@bp.route', "answers 200, with the tokens"),
    ('"token_type": "Bearer"}\n\n\n@bp.route', '"token_type": "bearer"}\n\n\n@bp.route', "\"token_type\": \"Bearer\"}`"),
    ('"refresh_token": create_refresh_token(identity=user)', '"refresh_token": create_access_token(identity=user)',
     "the refresh token is of `type` `'refresh'`"),
    # ... the tokens' lifetimes left to the config
    ("create_access_token(identity=user),", "create_access_token(identity=user, expires_delta=timedelta(days=1)),",
     "lives as long as the config says"),
    # ... a wrong password or an unknown email: `unauthorized(...)`, the same for both
    ('            return unauthorized("Wrong email or password.")',
     '            return unauthorized("Wrong password." if db.session.scalar(db.select(User).filter_by(email='
     'services.normalize_email(credentials["email"]))) else "No account has this email.")',
     "the same answer for a wrong password and for an unknown email"),
    ('            return unauthorized("Wrong email or password.")',
     '            return {"detail": "Wrong email or password."}, 403', "with a wrong password answers 401"),
    # `POST /refresh`: a refresh token, and nothing else
    ("    @jwt_required(refresh=True)", "    @jwt_required()", "with the access token answers 401"),
    ("    @jwt_required(refresh=True)", "    @jwt_required(refresh=True, optional=True)",
     "without `optional=True`"),
    # ... a new access token, with the role as it is now
    (REFRESH_VIEW, '        from flask_jwt_extended import get_jwt\n\n        return {"access_token": create_access_token('
                   'identity=current_user, additional_claims={"role": get_jwt()["role"]}), "token_type": "Bearer"}',
     "made after the user's role changed"),
    (REFRESH_VIEW, '        return {"access_token": create_refresh_token(identity=current_user), "token_type": "Bearer"}',
     "the new access token is of `type` `'access'`"),
    # `GET /me`: an access token, and nothing else
    ("    @jwt_required()", "    @jwt_required(optional=True)", "with no `Authorization` header"),
    ("    @jwt_required()", "    @jwt_required(refresh=True)", "the user, for the access token it got"),
    ("    @jwt_required()", '    @jwt_required(verify_type=False)', "with the refresh token answers 401"),
    # ... `{"id", "email", "role"}` of `current_user`
    ("        return current_user", '        return {"id": current_user.id, "email": current_user.email}',
     "answers `{"),
])
def test_wrong_tokens_fail(project, old, new, expected):
    """Is each requirement of exercise 1's text checked, on every seed?"""
    p = project(CHAPTER).edit(TOKENS, old, new)
    if "timedelta" in new:
        p.edit(TOKENS, "import marshmallow as ma\n", "from datetime import timedelta\n\nimport marshmallow as ma\n")
    assert_rejected(p.check("ex1"), expected)


def test_a_login_that_raises_for_an_unknown_email_is_an_error(project):
    """Is a login that looks the user up with `one()` (which raises for an unknown email) the learner's ERROR, with
    their line?"""
    p = project(CHAPTER).edit(TOKENS, LOGIN, '''        user = db.session.execute(db.select(User).filter_by(email=credentials["email"].strip().lower())).scalar_one()
        if not services.authenticate(credentials["email"], credentials["password"]):
            return unauthorized("Wrong email or password.")
        return {"access_token": create_access_token(identity=user),
                "refresh_token": create_refresh_token(identity=user), "token_type": "Bearer"}
''')
    assert_outcome(p.check("ex1"), Outcome.ERROR, "NoResultFound", "tokens.py")


def test_the_tokens_blueprint_is_exempt_from_csrf(learner_package):
    """Does `POST /api/v1/auth/tokens` reach its view without a CSRF token (401 for no such user, not CSRF's 400),
    while the pages still refuse a POST without one?"""
    tickethub = learner_package(CHAPTER, "solution")
    app = tickethub.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                                "SQLALCHEMY_ENGINE_OPTIONS": {}, "WTF_CSRF_ENABLED": True})
    with app.app_context():
        tickethub.db.db.create_all()
    client = app.test_client()
    reply = client.post("/api/v1/auth/tokens", json={"email": "ada@example.com", "password": "correct horse"})
    assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == "Bearer", reply.text
    assert client.post("/auth/login", data={"email": "ada@example.com", "password": "x"}).status_code == 400


def test_the_document_describes_bearer_tokens(learner_package):
    """Does the OpenAPI document name the `bearerAuth` scheme, and ask for it on `/refresh` and `/me` only?"""
    tickethub = learner_package(CHAPTER, "solution")
    app = tickethub.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLALCHEMY_ENGINE_OPTIONS": {}})
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                                                  "bearerFormat": "JWT"}
    assert doc["paths"]["/api/v1/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/api/v1/auth/refresh"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in doc["paths"]["/api/v1/auth/tokens"]["post"]
    assert doc["paths"]["/api/v1/auth/tokens"]["post"]["responses"]["401"] == {
        "$ref": "#/components/responses/UNAUTHORIZED"}


def test_the_starter_app_still_serves_the_api(learner_package):
    """Does the project right after the setup cell (exercise 1 unsolved) start, and serve chapter 06's API?"""
    tickethub = learner_package(CHAPTER)
    app = tickethub.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLALCHEMY_ENGINE_OPTIONS": {}})
    with app.app_context():
        tickethub.db.db.create_all()
    assert app.test_client().get("/api/v1/events/").status_code == 200


POLICY_FILE = "tickethub/auth/policy.py"
CAN = '''    rule = POLICY.get(action, {}).get(getattr(user, "role", None), DENY)
    if rule == OWNER:
        return obj is not None and obj.owner_id == user.id  # None is no one: an id is never None
    return rule == ALLOW
'''
WRAPPER = '''            obj = load(**kwargs) if load is not None else None
            if not can(current_user, action, obj):
                abort(403, message=f"Your role ({current_user.role}) may not do {action} here.")
            return view(*args, **kwargs)
'''


def test_policy_alternative_passes(project):
    """Do a `can` that returns early for each rule, and a wrapper that calls the view first thing when allowed,
    pass?"""
    p = (project(CHAPTER)
         .edit(POLICY_FILE, CAN, '''    rules = POLICY.get(action) or {}
    rule = rules.get(user.role) if hasattr(user, "role") else None
    if rule is None or rule == DENY:
        return False
    if rule == ALLOW:
        return True
    return getattr(obj, "owner_id", None) == user.id
''')
         .edit(POLICY_FILE, WRAPPER, '''            obj = None if load is None else load(**kwargs)
            if can(current_user, action, obj):
                return view(*args, **kwargs)
            abort(403)
'''))
    assert_outcome(p.check("ex2"), Outcome.PASS)


@pytest.mark.parametrize("old, new, expected", [
    # `can`: ALLOW is True, DENY is False
    ("    return rule == ALLOW\n", "    return (rule == ALLOW) or None\n", "returns `False`"),
    # ... OWNER only when `obj` is not None and `obj.owner_id == user.id`
    ("        return obj is not None and obj.owner_id == user.id", "        return True", "<no object>)` returns `False`"),
    ("        return obj is not None and obj.owner_id == user.id", "        return obj.owner_id == user.id",
     "'NoneType' object has no attribute 'owner_id'"),
    ("        return obj is not None and obj.owner_id == user.id", "        return obj is not None",
     "another user's event"),
    # ... what POLICY says for the role: the admin's column too
    ('    rule = POLICY.get(action, {}).get(getattr(user, "role", None), DENY)',
     '    rule = POLICY.get(action, {}).get(user.role, DENY) if user.role != "admin" else OWNER', "<admin"),
    # ... an unknown action or role is False
    ('    rule = POLICY.get(action, {}).get(getattr(user, "role", None), DENY)', "    rule = POLICY[action][user.role]",
     "KeyError"),
    ('    rule = POLICY.get(action, {}).get(getattr(user, "role", None), DENY)',
     '    rule = POLICY.get(action, {}).get(user.role, ALLOW)', "'event:publish'"),
    # the wrapper: `load(**kwargs)` when there is a `load`
    ("            obj = load(**kwargs) if load is not None else None\n", "            obj = None\n",
     "(no such event) by an attendee answers 404"),
    # ... 403 with `abort(403, ...)`
    ('                abort(403, message=f"Your role ({current_user.role}) may not do {action} here.")',
     '                abort(404)', "answers 403 with problem details"),
    ('                abort(403, message=f"Your role ({current_user.role}) may not do {action} here.")',
     '                return {"message": "forbidden"}, 403', "answers 403 with problem details"),
    # ... the event first (404), then the permission (403)
    ("            obj = load(**kwargs) if load is not None else None\n",
     "            if POLICY[action].get(current_user.role) == DENY:\n                abort(403)\n"
     "            obj = load(**kwargs) if load is not None else None\n", "(no such event) by an attendee answers 404"),
    # ... the view, called as it was
    ("            return view(*args, **kwargs)\n", "            return view(*args)\n", "missing 1 required"),
    ("            return view(*args, **kwargs)\n", "            view(*args, **kwargs)\n", "did not return a valid response"),
])
def test_wrong_policy_fails(project, old, new, expected):
    """Is each requirement of exercise 2's text checked, on every seed?"""
    assert_rejected(project(CHAPTER).edit(POLICY_FILE, old, new).check("ex2"), expected)


def test_the_migration_chain_matches_the_models(migrated):
    """Do migrations 0001 to 0006 build the schema the models describe (events' owner included), and go back down?"""
    import sqlalchemy as sa
    from flask_migrate import downgrade

    engine = migrated(CHAPTER)
    assert "owner_id" in {c["name"] for c in sa.inspect(engine).get_columns("events")}
    keys = sa.inspect(engine).get_foreign_keys("events")
    assert any(k["referred_table"] == "users" and k["constrained_columns"] == ["owner_id"] for k in keys)
    downgrade(directory="migrations", revision="0005_users")
    assert "owner_id" not in {c["name"] for c in sa.inspect(engine).get_columns("events")}


TOKEN_TESTS = "tests/test_tokens.py"
EDGE = '''        clock.shift(timedelta(minutes=14, seconds=59))
        assert me(client, access).status_code == 200
        clock.shift(timedelta(seconds=1))
'''


def test_token_tests_alternative_passes(project):
    """Do tests written otherwise (the clock moved with `travel` calls of their own, parametrised edges, the claim
    read with PyJWT) pass?"""
    p = project(CHAPTER).edit(TOKEN_TESTS, '''def test_an_access_token_works_for_15_minutes_and_not_a_second_more(client):
    with time_machine.travel(T0, tick=False) as clock:
        access = log_in(client)["access_token"]
        assert me(client, access).status_code == 200
''' + EDGE + '''        reply = me(client, access)
''', '''@pytest.mark.parametrize("later, works", [(timedelta(0), True), (timedelta(seconds=899), True),
                                           (timedelta(seconds=900), False), (timedelta(hours=2), False)])
def test_an_access_token_works_for_15_minutes_and_not_a_second_more(client, later, works):
    with time_machine.travel(T0, tick=False):
        access = log_in(client)["access_token"]
    with time_machine.travel(T0 + later, tick=False):
        reply = me(client, access)
    if works:
        assert reply.status_code == 200
        return
    with time_machine.travel(T0 + later, tick=False):
        reply = me(client, access)
''').edit(TOKEN_TESTS, '''    with app.app_context():
        assert decode_token(access)["role"] == "organizer"
''', '''    import jwt

    claims = jwt.decode(access, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
    assert claims["role"] == "organizer"
''')
    assert_outcome(p.check("ex3"), Outcome.PASS)


@pytest.mark.parametrize("old, new, expected", [
    # works until 15 minutes have passed (the edge: a lifetime of 16 minutes)
    (EDGE, "        clock.shift(timedelta(hours=1))\n", "access tokens live a second too long"),
    ("        clock.shift(timedelta(minutes=14, seconds=59))\n        assert me(client, access).status_code == 200\n",
     "        clock.shift(timedelta(minutes=14, seconds=59))\n", "access tokens live 10 minutes"),
    # ... refused at 15 minutes: 401, problem details, `WWW-Authenticate: Bearer`
    ("        assert reply.status_code == 401\n        assert reply.mimetype", "        assert reply.status_code != 200\n"
     "        assert reply.mimetype", "answered 403"),
    ('        assert reply.mimetype == "application/problem+json"\n        assert reply.headers["WWW-Authenticate"]'
     '.startswith("Bearer")\n\n\ndef test_a_refresh', "\n\ndef test_a_refresh", "as `application/json`"),
    # ... with the clock under control, not a fixed lifetime in the token alone
    (EDGE + "        reply = me(client, access)\n        assert reply.status_code == 401\n",
     "        claims = __import__(\"jwt\").decode(access, options={\"verify_signature\": False})\n"
     "        assert claims[\"exp\"] - claims[\"iat\"] == 900\n        return\n", "an hour of leeway"),
    # a refresh token gets a new access token, days later
    ("        clock.shift(timedelta(days=29))\n", "        clock.shift(timedelta(minutes=1))\n",
     "refresh tokens expire with the access token"),
    # a refresh token is refused as an access token
    ('def test_a_refresh_token_is_refused_as_an_access_token(client):', "def refresh_as_access(client):",
     "a refresh token is accepted as an access token"),
    # the access token carries the role
    ('def test_the_access_token_carries_the_role(app, client):', "def role_claim(app, client):", "tokens carry no role"),
    # what must stay true, not how it is done: a realm, other words, more claims
    ('        assert reply.headers["WWW-Authenticate"].startswith("Bearer")\n\n\ndef test_a_refresh',
     '        assert reply.headers["WWW-Authenticate"] == "Bearer"\n\n\ndef test_a_refresh', "names a realm"),
    ('        assert decode_token(access)["role"] == "organizer"\n',
     '        claims = decode_token(access)\n        assert set(claims) - {"csrf", "exp", "fresh", "iat", "jti", "nbf", '
     '"sub", "type"} == {"role"}\n', "carry the email too"),
])
def test_weak_token_tests_fail(project, old, new, expected):
    """Is a test that misses one of the seeded bugs, or tests how the code is written today, refused?"""
    assert_rejected(project(CHAPTER).edit(TOKEN_TESTS, old, new).check("ex3"), expected)
