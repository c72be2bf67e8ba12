"""Do chapter 07's checks accept right answers and reject wrong ones?"""

import pytest

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
