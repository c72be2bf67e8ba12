"""Do chapter 07's checks accept right answers and reject wrong ones?"""

import re

import pytest
import sqlalchemy as sa

from checkers.engine.outcomes import Outcome
from conftest import assert_outcome, assert_rejected

CHAPTER = "07-authentication"
REDIRECTS = "tickethub/auth/redirects.py"
PASSWORDS = "tickethub/auth/passwords.py"
TESTS = "tests/test_safe_redirects.py"
RULE = '''    if (not isinstance(target, str) or not target.startswith("/") or target.startswith("//") or "\\\\" in target
            or any(ord(c) < 32 or ord(c) == 127 for c in target)):
'''


def test_safe_next_alternative_passes(project):
    """Does a `safe_next` written with `urlsplit` and a regular expression pass?"""
    p = project(CHAPTER).edit(REDIRECTS, RULE, '''    import re
    from urllib.parse import urlsplit

    if (type(target) is not str or re.search(r"[\\x00-\\x1f\\x7f\\\\]", target) or urlsplit(target).scheme
            or urlsplit(target).netloc or not target.startswith("/") or target.startswith("//")):
''')
    assert_outcome(p.check("ex1"), Outcome.PASS)


@pytest.mark.parametrize("old, new, expected", [
    # it is a `str`
    ("not isinstance(target, str) or ", "target is None or ", "`next` was missing, or not text"),
    # it starts with `/`
    ('not target.startswith("/") or ', "", "an absolute URL"),
    # but not with `//`
    (' or target.startswith("//")', "", "a protocol-relative URL"),
    # no backslash
    (' or "\\\\" in target', "", "backslash"),
    # no control character below 32
    ("ord(c) < 32 or ", "", "a tab inside the slashes"),
    ("ord(c) < 32", "ord(c) < 10", "a line break"),
    ("ord(c) < 32", "ord(c) < 31", "control character 31"),
    # nor 127
    (" or ord(c) == 127", "", "a DEL character"),
    # nor is text beyond ASCII
    ("not isinstance(target, str) or ", "not isinstance(target, str) or not target.isascii() or ", "café"),
    ("not isinstance(target, str) or ", "not isinstance(target, str) or not target.isprintable() or ", "bar"),
    # a space is not a control character
    ("ord(c) < 32", "ord(c) <= 32", "jazz night"),
    # kept unchanged
    ("    return target\n", "    return target.rstrip(\"#tickets\")\n", "returns `"),
    ("    return target\n", "    return fallback\n", "`safe_next('/', '"),
    # `fallback` for anything else
    ("        return fallback\n", '        return "/"\n', "returns the fallback"),
    ("        return fallback\n", "        return None\n", "returns the fallback"),
    # the default fallback is `/`
    ('def safe_next(target, fallback="/"):', 'def safe_next(target, fallback="/home"):', "without a fallback, returns `'/'`"),
])
def test_wrong_safe_next_fails(project, old, new, expected):
    """Is each requirement of exercise 1's text checked, on every seed?"""
    assert_rejected(project(CHAPTER).edit(REDIRECTS, old, new).sweep("ex1"), expected)


def test_password_alternative_passes(project):
    """Does a `verify_password` that catches argon2's base error, and compares with `is True`, pass?"""
    p = project(CHAPTER).edit(PASSWORDS, '''    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
''', '''    from argon2.exceptions import Argon2Error

    try:
        hasher().verify(password_hash, password)
    except (Argon2Error, ValueError):
        return False
    return True
''')
    assert_outcome(p.check("ex2"), Outcome.PASS)


@pytest.mark.parametrize("old, new, expected", [
    # argon2id, with the app's parameters
    ("    return hasher().hash(password)\n",
     "    from argon2 import Type\n    return PasswordHasher(time_cost=2, memory_cost=64, type=Type.I).hash(password)\n",
     "`$argon2id$`"),
    ("    return hasher().hash(password)\n", "    return PasswordHasher(time_cost=3, memory_cost=256).hash(password)\n",
     "the app's parameters"),
    # a str
    ("    return hasher().hash(password)\n", "    return hasher().hash(password).encode()\n", "a `str`"),
    # a new salt every call
    ("    return hasher().hash(password)\n",
     "    return hasher().hash(password, salt=b\"0123456789abcdef\")\n", "differ"),
    # not the password
    ("    return hasher().hash(password)\n", "    return hasher().hash(password) + password\n",
     "does not contain the password"),
    # False for a wrong password
    ("    except (VerificationError, InvalidHashError):", "    except InvalidHashError:", "a wrong password"),
    # False for a malformed hash
    ("    except (VerificationError, InvalidHashError):", "    except VerificationError:", "a malformed hash"),
    # True for the password, with whichever parameters the hash names
    ("        return hasher().verify(password_hash, password)\n",
     "        return hasher().verify(password_hash, password) and not hasher().check_needs_rehash(password_hash)\n",
     "other parameters"),
    # needs_rehash
    ("    return hasher().check_needs_rehash(password_hash)\n", "    return False\n", "higher time cost"),
    ("    return hasher().check_needs_rehash(password_hash)\n", "    return True\n", "just made returns `False`"),
    ("    return hasher().check_needs_rehash(password_hash)\n",
     "    return PasswordHasher(memory_cost=current_app.config['ARGON2_MEMORY_COST']).check_needs_rehash(password_hash)\n",
     "just made returns `False`"),
])
def test_wrong_passwords_fail(project, old, new, expected):
    """Is each requirement of exercise 2's text checked, on every seed?"""
    assert_rejected(project(CHAPTER).edit(PASSWORDS, old, new).sweep("ex2"), expected)


def test_hasher_without_config_reads_the_defaults(project):
    """Does a `hasher()` that ignores the config fail (the check sets cheap parameters)?"""
    p = project(CHAPTER).edit(PASSWORDS, 'current_app.config.get("ARGON2_TIME_COST", 3)', "3")
    p.edit(PASSWORDS, 'current_app.config.get("ARGON2_MEMORY_COST", 65536)', "65536")
    p.edit(PASSWORDS, 'current_app.config.get("ARGON2_PARALLELISM", 4)', "4")
    assert_rejected(p.check("ex2"), "the app's parameters")


@pytest.mark.parametrize("old, new, expected", [
    ("REFUSED = [", "REFUSED = [\"https://evil.example/\"]\nUNUSED = [", "`//evil.example`, is kept"),
    ('    assert safe_next(target, "/home") == "/home"\n', '    safe_next(target, "/home")\n', "is kept"),
    ('    assert safe_next("/events/3?page=2", "/home") == "/events/3?page=2"\n',
     '    safe_next("/events/3?page=2", "/home")\n', "every target is refused"),
    ('    assert safe_next(target, "/home") == "/home"\n', '    assert safe_next(target, "/") == "/"\n',
     "whatever the fallback"),
    ('    assert safe_next("/events/3?page=2", "/home") == "/events/3?page=2"\n',
     '    assert safe_next("/events/3?page=2", "/home") == "/events/3?page=2"\n    assert "urlsplit" not in safe_next.__code__.co_names\n',
     "urlsplit"),
])
def test_weak_redirect_tests_fail(project, old, new, expected):
    """Is a test that misses one of the seeded bugs, or tests how `safe_next` is written, refused?"""
    assert_rejected(project(CHAPTER).edit(TESTS, old, new).check("ex3"), expected)


SERVICES, ROUTES, CSRF_TESTS = "tickethub/auth/services.py", "tickethub/auth/routes.py", "tests/test_csrf.py"
REHASH = "        user.password_hash = hash_password(password)\n        db.session.commit()\n"


def test_accounts_alternative_passes(project):
    """Does a service that looks users up with `User.query`, and casefolds emails, pass?"""
    p = project(CHAPTER).edit(SERVICES, "    return email.strip().lower()", "    return email.strip().casefold()")
    p.edit(SERVICES, "    elif db.session.scalar(select(User).filter_by(email=email)) is not None:",
           "    elif User.query.filter_by(email=email).first():")
    assert_outcome(p.check("ex4"), Outcome.PASS)


@pytest.mark.parametrize("old, new, expected", [
    # normalize_email: trimmed, lower case
    ("    return email.strip().lower()", "    return email.lower()", "trimmed and in lower case"),
    ("    return email.strip().lower()", "    return email.strip()", "trimmed and in lower case"),
    # register stores the email normalised
    ("    email = normalize_email(email) if isinstance(email, str) else \"\"\n",
     "    email = email if isinstance(email, str) else \"\"\n", "the new user"),
    # a hash of the password, committed
    ("password_hash=hash_password(password)", "password_hash=password", "an argon2id hash"),
    ("    try:\n        db.session.commit()\n", "    try:\n        db.session.flush()\n", "committed"),
    # an email of at most 254 characters
    ("    if len(email) > 254 or not EMAIL.fullmatch(email):", "    if not EMAIL.fullmatch(email):",
     "raises `AccountError`"),
    ("    if len(email) > 254 or", "    if len(email) >= 254 or", "exactly 254 characters"),
    # a password of at least MIN_PASSWORD_LENGTH characters, a str
    ("len(password) < MIN_PASSWORD_LENGTH", "len(password) <= MIN_PASSWORD_LENGTH", "exactly"),
    ("not isinstance(password, str) or len(password)", "len(str(password))", "12345678"),
    # a role of ROLES
    ("    if role not in ROLES:", "    if role is None:", "names `role`"),
    # each bad field, only those
    ("    if not isinstance(password, str) or", "    elif not isinstance(password, str) or", "names `email`, `password`"),
    # two registrations at once
    ("        raise AccountError({\"email\": \"This email already has an account.\"}) from None\n",
     "        return None\n", "raises `AccountError`"),
    ("        db.session.rollback()\n        raise AccountError", "        raise AccountError", "goes on working"),
    # authenticate: the email in any case
    ("    email = normalize_email(email)\n    # only", "    # only", "returns the user"),
    # look a user up only for an address
    ("select(User).filter_by(email=email)) if EMAIL.fullmatch(email) else None",
     "select(User).filter_by(email=email))", "`EMAIL.fullmatch(email)`"),
    # None for a wrong password
    ("    if not verify_password(user.password_hash, password):\n        return None\n", "", "a wrong password"),
    # an unknown email costs a password check
    ("        verify_password(dummy_hash(), password)", "        dummy_hash()", "`dummy_hash()` anyway"),
    ("        verify_password(dummy_hash(), password)", "        verify_password(password, dummy_hash())",
     "`dummy_hash()` anyway"),
    # rehash after a right password, committed; a wrong one changes nothing
    ("    if needs_rehash(user.password_hash):", "    if False:", "a new hash of the password"),
    (REHASH, "        user.password_hash = hash_password(password)\n", "a new hash of the password"),
    ("    if not verify_password(user.password_hash, password):\n        return None\n    if needs_rehash",
     "    old = user.password_hash\n    if needs_rehash(user.password_hash):\n" + REHASH
     + "    if not verify_password(old, password):\n        return None\n    if False and needs_rehash",
     "leaves the stored hash"),
])
def test_wrong_accounts_fail(project, old, new, expected):
    """Is each requirement of exercise 4's text checked, on every seed?"""
    assert_rejected(project(CHAPTER).edit(SERVICES, old, new).check("ex4"), expected)


LOGIN_OK = '            return redirect(safe_next(request.args.get("next"), url_for("auth.account")))\n'


@pytest.mark.parametrize("old, new, expected", [
    # load_user: the user with this id, None when gone
    ("    return db.session.get(User, int(user_id))", "    return db.session.get(User, 1)", "the account of"),
    ("    return db.session.get(User, int(user_id))", "    return db.get_or_404(User, int(user_id))",
     "sends to the login page"),
    # redirect to next when safe, else the account page
    (LOGIN_OK, '            return redirect(request.args.get("next") or url_for("auth.account"))\n', "//evil.example"),
    (LOGIN_OK, '            return redirect(safe_next(request.args.get("next"), "/"))\n', "302 to `/auth/account`"),
    # remember-me when ticked, and only then
    ("login_user(user, remember=form.remember.data)", "login_user(user, remember=True)", "sets no `remember_token`"),
    ("login_user(user, remember=form.remember.data)", "login_user(user)", "sets the cookie `remember_token`"),
    # the message, and the form again with 200
    ('form.form_errors.append("Wrong email or password.")', 'form.form_errors.append("Wrong password.")',
     "Wrong email or password."),
    ('        form.form_errors.append("Wrong email or password.")\n',
     '        form.form_errors.append("Wrong email or password.")\n'
     '        return render_template("auth/login.html", form=form), 401\n', "answers 200"),
    # only a valid form logs in
    ("    if form.validate_on_submit():\n        user = services", "    if request.method == \"POST\":\n        user = "
     "services", "validate_on_submit()` is true? A form"),
    # logout: logout_user (the remember-me cookie too), then the login page
    ("    logout_user()\n", "", "no one is logged in"),
    ("    logout_user()\n", "    session.clear()\n", "no one is logged in"),
    ('    return redirect(url_for("auth.login"))\n', '    return redirect("/")\n', "302 to `/auth/login`"),
    ('@bp.post("/logout")', '@bp.route("/logout", methods=["GET", "POST"])', "405"),
])
def test_wrong_login_pages_fail(project, old, new, expected):
    """Is each requirement of exercise 5's text checked, on every seed?"""
    p = project(CHAPTER).edit(ROUTES, old, new)
    if "session.clear()" in new:
        p.edit(ROUTES, "from flask import Blueprint,", "from flask import session, Blueprint,")
    assert_rejected(p.check("ex5"), expected)


def test_login_pages_alternative_passes(project):
    """Do a `load_user` with `User.query`, and a login that reads `next` from `request.values`, pass?"""
    p = project(CHAPTER).edit(ROUTES, "    return db.session.get(User, int(user_id))",
                              "    return User.query.filter_by(id=int(user_id)).first()")
    p.edit(ROUTES, 'safe_next(request.args.get("next"), url_for("auth.account"))',
           'safe_next(request.values.get("next"), fallback=url_for("auth.account"))')
    assert_outcome(p.check("ex5"), Outcome.PASS)


@pytest.mark.parametrize("old, new, expected", [
    # a forged logout refused, the user still logged in
    ("def test_a_forged_logout_is_refused(client):", "def forged_logout(client):", "the logout view is exempt"),
    # GET /auth/logout refused
    ("def test_logout_is_only_a_post(client):", "def logout_by_get(client):", "answers a GET too"),
    # what must stay true, not Flask-WTF's wording
    ('    assert client.post("/auth/logout").status_code == 400\n',
     '    assert b"The CSRF token is missing." in client.post("/auth/logout").data\n', "a page of TicketHub's own"),
    # a status the reference does not give
    ('    assert client.post("/auth/logout").status_code == 400\n',
     '    assert client.post("/auth/logout").status_code == 403\n', "pass on the chapter's reference"),
])
def test_weak_csrf_tests_fail(project, old, new, expected):
    """Is a test that misses one of the seeded bugs, or tests Flask-WTF's wording, refused?"""
    assert_rejected(project(CHAPTER).edit(CSRF_TESTS, old, new).check("ex6"), expected)


def test_the_migration_chain_matches_the_models(migrated):
    """Do migrations 0001 to 0005 build the schema the models describe (users included), and go back down?"""
    from flask_migrate import downgrade

    engine = migrated(CHAPTER)
    assert {c["name"] for c in sa.inspect(engine).get_columns("users")} == {"id", "email", "password_hash", "role"}
    downgrade(directory="migrations", revision="0004_indexes")
    assert "users" not in sa.inspect(engine).get_table_names()


def _log_in_as_a_browser(client, base_url):
    """Register and log in through the pages, with remember-me, as a browser on `base_url` does; the login's reply."""
    headers = {"Referer": f"{base_url}/auth/login"}  # over HTTPS, Flask-WTF also wants a same-site Referer

    def token(url):
        page = client.get(url, base_url=base_url).text
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    client.post("/auth/register", base_url=base_url, headers=headers, data={
        "csrf_token": token("/auth/register"), "email": "ada@example.com", "password": "correct horse",
        "confirm": "correct horse"})
    client.post("/auth/logout", base_url=base_url, headers=headers, data={"csrf_token": token("/auth/account")})
    return client.post("/auth/login", base_url=base_url, headers=headers, data={
        "csrf_token": token("/auth/login"), "email": "ada@example.com", "password": "correct horse", "remember": "y"})


@pytest.mark.parametrize("environment, secure", [("development", False), ("production", True)])
def test_the_login_cookies_carry_each_environments_flags(learner_package, monkeypatch, environment, secure):
    """Do the session and remember-me cookies of a real login say HttpOnly and SameSite=Lax everywhere, and Secure
    in production only (the given config of chapter 07)?"""
    monkeypatch.setenv("TICKETHUB_ENV", environment)
    monkeypatch.setenv("TICKETHUB_SECRET_KEY", "k" * 40)
    tickethub = learner_package(CHAPTER, "solution")
    app = tickethub.create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLALCHEMY_ENGINE_OPTIONS": {},
                                "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 16, "ARGON2_PARALLELISM": 1})
    with app.app_context():
        tickethub.db.db.create_all()
    reply = _log_in_as_a_browser(app.test_client(), "https://tickethub.example")
    assert reply.status_code == 302, reply.text
    cookies = {header.split("=", 1)[0]: header.split("; ")[1:] for header in reply.headers.getlist("Set-Cookie")}
    assert set(cookies) == {"session", "remember_token"}
    for flags in cookies.values():
        assert "HttpOnly" in flags and "SameSite=Lax" in flags
        assert ("Secure" in flags) is secure
    assert any(flag.startswith("Expires=") for flag in cookies["remember_token"])


def test_the_api_is_exempt_from_csrf_and_a_new_page_is_not(learner_package):
    """Does the JSON API take a POST without a token (201), while a form view no one exempted refuses it (400)?"""
    import flask

    tickethub = learner_package(CHAPTER, "solution")
    app = tickethub.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLALCHEMY_ENGINE_OPTIONS": {}})
    page = flask.Blueprint("new_page", __name__)
    page.add_url_rule("/new", "new", lambda: "saved", methods=["POST"])
    app.register_blueprint(page)
    with app.app_context():
        tickethub.db.db.create_all()
    client = app.test_client()
    assert client.post("/api/v1/venues/", json={"name": "Hall", "city": "Leeds", "capacity": 5}).status_code == 201
    assert client.post("/new").status_code == 400
