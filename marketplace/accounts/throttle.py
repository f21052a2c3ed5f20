"""Failed logins, limited per username and per client IP (marketplace/ratelimit.py), for the
login page and POST /api/v1/auth/token alike. Beyond either limit the attempt is refused before
the password is checked, so even the right one waits for the window to end."""

from django.contrib.auth import authenticate

from marketplace.ratelimit import Limit, RateLimited, subject_key, wait_phrase

BY_USERNAME = Limit("login-username", "LOGIN_FAILURES_PER_USERNAME", "LOGIN_FAILURE_WINDOW_SECONDS")
BY_IP = Limit("login-ip", "LOGIN_FAILURES_PER_IP", "LOGIN_FAILURE_WINDOW_SECONDS")


def client_ip(request) -> str:
    # REMOTE_ADDR only: a forwarded header is the client's to write (daphne --proxy-headers
    # puts the proxy's X-Forwarded-For here when it is trusted).
    return request.META.get("REMOTE_ADDR") or "unknown"


def authenticate_limited(request, *, username: str, password: str):
    """authenticate() behind the limits: the user, None for wrong credentials, or RateLimited.
    Each attempt is counted before the password is checked (so parallel guesses cannot
    overtake the count); a success takes it back and clears the username's count."""
    account = subject_key(username.casefold())
    ip = client_ip(request)
    by_username = BY_USERNAME.hit(account)
    if not by_username.allowed:
        raise RateLimited(
            f"Too many failed logins for this account: try again in {wait_phrase(by_username.retry_after)}.",
            retry_after=by_username.retry_after,
        )
    by_ip = BY_IP.hit(ip)
    if not by_ip.allowed:
        BY_USERNAME.give_back(account)  # no password was checked for it
        raise RateLimited(
            f"Too many failed logins from your network: try again in {wait_phrase(by_ip.retry_after)}.",
            retry_after=by_ip.retry_after,
        )
    user = authenticate(request, username=username, password=password)
    if user is not None:
        BY_USERNAME.reset(account)
        BY_IP.give_back(ip)
    return user
