"""Security headers for pages the platform writes outside Django's middleware.

Django's responses get them from SecurityMiddleware and django-csp (settings:
CONTENT_SECURITY_POLICY, SECURE_*). The interactive-session proxy (interactive.proxy)
answers some requests itself (a session that is over, not found, starting):
those pages are ours and get the same policy. What a session's own server
sends through the proxy is the user's, and gets none of it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.utils import build_policy
from django.conf import settings


def _origin(url: str) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def own_page_headers(*, platform: str = "") -> list[tuple[bytes, bytes]]:
    """ASGI headers for one of our own pages; `platform` is the base URL its stylesheet comes from when the page
    is served on another origin (a session's host, the proxy's own port)."""
    origin = _origin(platform)
    policy = build_policy(update={"style-src": [origin]} if origin else None)
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode("latin-1")),
    ]
    if policy:
        headers.append((b"content-security-policy", policy.encode("latin-1")))
    return headers
