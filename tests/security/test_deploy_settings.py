"""The production settings, evaluated fresh in a subprocess with the environment .env.example
documents: Django's deployment checks pass, the cookies and headers are the strict ones, and a
configuration that would open the site up refuses to start."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
SECRET = secrets.token_urlsafe(50)
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": SECRET,
    "DJANGO_ALLOWED_HOSTS": "inbox.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://inbox.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "SITE_URL": "https://inbox.example.com",
}

# What a browser gets from the production site: the login page over HTTPS and over plain HTTP
# (no database needed: an anonymous page), and the settings behind the session cookie.
PROBE = """
import json
import django
from django.conf import settings
from django.test import Client

django.setup()
client = Client(HTTP_HOST="inbox.example.com")
page = client.get("/accounts/login/", secure=True)
plain = client.get("/accounts/login/")
csrf = page.cookies[settings.CSRF_COOKIE_NAME]
print(json.dumps({
    "status": page.status_code,
    "headers": dict(page.headers),
    "csrf_cookie": {key: csrf[key] for key in ("secure", "httponly", "samesite", "path", "domain")},
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location"),
    "settings": {name: getattr(settings, name) for name in (
        "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SESSION_COOKIE_NAME", "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "SESSION_COOKIE_DOMAIN",
        "SESSION_COOKIE_PATH", "PASSWORD_HASHERS", "SILENCED_SYSTEM_CHECKS",
    )},
}))
"""


def run_python(args: list[str], **overrides) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    # Only this environment: a developer's .env must not fill in what a test leaves out.
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="marketplace.settings", DJANGO_ENV_FILE="/dev/null")
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def production():
    result = run_python(["-c", PROBE])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deployment_checks_find_nothing_in_production_settings():
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_the_only_silenced_check_is_hsts_preload_and_docs_say_why(production):
    assert production["settings"]["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
    assert "security.W021" in (PROJECT_DIR / "docs" / "SECURITY.md").read_text()

    # With preload on (the operator's choice), nothing is silenced.
    show = (
        "import marketplace.settings as s; "
        "print(s.SECURE_HSTS_PRELOAD, vars(s).get('SILENCED_SYSTEM_CHECKS'))"
    )
    preloaded = run_python(["-c", show], DJANGO_SECURE_HSTS_PRELOAD="1")
    assert preloaded.stdout.split() == ["True", "None"], preloaded.stderr


def test_production_pages_carry_hsts_csp_and_isolation_headers(production):
    headers = production["headers"]

    assert production["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


def test_plain_http_is_redirected_to_https(production):
    assert production["plain_status"] == 301
    assert production["plain_location"] == "https://inbox.example.com/accounts/login/"


def test_production_cookies_are_secure_and_not_sent_cross_site(production):
    csrf = production["csrf_cookie"]
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"

    session = production["settings"]
    assert session["SESSION_COOKIE_SECURE"] is True
    assert session["SESSION_COOKIE_HTTPONLY"] is True
    assert session["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    # __Host-: browsers refuse it unless Secure, for path / and without a Domain.
    assert session["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert session["SESSION_COOKIE_DOMAIN"] is None
    assert session["SESSION_COOKIE_PATH"] == "/"


def test_production_hashes_passwords_with_argon2_and_takes_the_key_from_the_environment(production):
    assert production["settings"]["PASSWORD_HASHERS"][0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert production["settings"]["SECRET_KEY"] == SECRET
    assert production["settings"]["DEBUG"] is False
    assert production["settings"]["ALLOWED_HOSTS"] == ["inbox.example.com"]


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_ALLOWED_HOSTS": "inbox.example.com,*"}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "too-short"}, "DJANGO_SECRET_KEY"),
    ],
    ids=["star", "star-in-list", "empty-hosts", "no-key", "empty-key", "short-key"],
)
def test_production_refuses_to_start_open_or_keyless(overrides, complaint):
    result = run_python(["-c", "import marketplace.settings"], **overrides)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert complaint in result.stderr
