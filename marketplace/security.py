"""Content-Security-Policy on every response (Django 5.2 has none built in), and the endpoint
browsers report violations to.

The policy is settings.CONTENT_SECURITY_POLICY plus what only a request or the storage settings
know: this host's websocket origin, and the origin the attachment bucket's presigned URLs point at.
"""

import json
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger("marketplace.csp")

S3_BACKENDS = ("storages.backends.s3.S3Storage", "storages.backends.s3boto3.S3Boto3Storage")


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def storage_origins() -> list[str]:
    """Where the browser fetches attachment bytes from and uploads parts to, besides this site."""
    origins = list(settings.CSP_STORAGE_ORIGINS)
    storage = settings.STORAGES.get("default", {})
    options = storage.get("OPTIONS", {})
    bucket = options.get("bucket_name")
    if storage.get("BACKEND") in S3_BACKENDS and bucket:
        if options.get("custom_domain"):
            origins.append(f"https://{options['custom_domain']}")
        elif options.get("endpoint_url"):
            # boto3 signs path-style URLs for a custom endpoint: the endpoint's origin.
            origins.append(_origin(options["endpoint_url"]))
        else:
            origins.append(f"https://{bucket}.s3.amazonaws.com")
            if options.get("region_name"):
                origins.append(f"https://{bucket}.s3.{options['region_name']}.amazonaws.com")
    return [origin for origin in dict.fromkeys(origins) if origin]


def policy_for(request) -> str:
    directives = {name: list(sources) for name, sources in settings.CONTENT_SECURITY_POLICY.items()}
    try:
        host = request.get_host()
    except DisallowedHost:  # the 400 for a foreign Host still gets the base policy
        host = None
    connect = directives.setdefault("connect-src", ["'self'"])
    if host:
        # CSP3 lets 'self' cover ws(s) of this host; older engines need it spelled out.
        connect.append(f"wss://{host}")
        if not request.is_secure():
            connect.append(f"ws://{host}")
    bucket = storage_origins()
    connect.extend(bucket)
    directives.setdefault("img-src", ["'self'"]).extend(bucket)
    if settings.CSP_REPORT_PATH:
        directives["report-uri"] = [settings.CSP_REPORT_PATH]
    return "; ".join(" ".join([name, *dict.fromkeys(sources)]) for name, sources in directives.items())


def csp_report(request) -> HttpResponse:
    """Log one violation report (report-uri's JSON, or a Reporting API list) and answer 204."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > settings.CSP_REPORT_MAX_BYTES:
        return HttpResponse(status=413)
    try:
        body = json.loads(request.body or b"null")
    except ValueError:
        return HttpResponse(status=400)
    reports = body if isinstance(body, list) else [body]
    for report in reports[:10]:
        if not isinstance(report, dict):
            continue
        details = report.get("csp-report") or report.get("body") or {}
        if not isinstance(details, dict):
            continue
        logger.warning(
            "CSP violation: %r blocked %r on %r",
            str(details.get("violated-directive") or details.get("effectiveDirective"))[:100],
            str(details.get("blocked-uri") or details.get("blockedURL"))[:300],
            str(details.get("document-uri") or details.get("documentURL"))[:300],
        )
    return HttpResponse(status=204)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Sets Content-Security-Policy on every response that has none, and answers the violation
    reports itself: before sessions and CSRF, since browsers send them without either."""

    def process_request(self, request):
        if settings.CSP_REPORT_PATH and request.path == settings.CSP_REPORT_PATH and request.method == "POST":
            return csp_report(request)
        return None

    def process_response(self, request, response):
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy_for(request)
        return response
