from functools import cache

from django.contrib import admin
from django.contrib.staticfiles import finders
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


@cache
def _favicon_bytes() -> bytes:
    with open(finders.find("img/favicon.ico"), "rb") as f:
        return f.read()


@require_GET
def favicon(request):
    """/favicon.ico, which browsers ask for on their own whatever the page links."""
    response = HttpResponse(_favicon_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from our static files, started by a script of its own (?script): works offline and under the CSP
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("routines.urls")),
    path("api/v1/", include("workers.urls")),
    path("api/v1/", include("interactive.urls")),
    path("api/v1/", include("files.urls")),
    path("api/xet-cas/", include("files.xet_urls")),
    path("api/v1/", include("jobflows.urls")),
    path("api/v1/", include("hosting.urls")),
    path("", include("hosting.page_urls")),
    path("", include("web.urls")),
    path("", include("accounts.urls")),
]

# A path under /api/ that names no endpoint (e.g. /api/v1/jobs/abc/) is answered in JSON like every API error.
handler404 = "accelerator.api_errors.page_not_found"  # templates/404.html elsewhere


def permission_denied(request, exception):
    """Django's 403 (handler403): JSON under /api/; the site's page (templates/403.html) elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "You do not have permission to do this.", "code": "forbidden"}, status=403)
    return defaults.permission_denied(request, exception)


def server_error(request):
    """Django's 500 (handler500): JSON under /api/; the site's page (templates/500.html) elsewhere."""
    if request.path.startswith("/api/"):
        detail = "The server failed to answer this request; it has been logged. Try again in a moment."
        return JsonResponse({"detail": detail, "code": "server_error"}, status=500)
    return defaults.server_error(request)


handler403 = permission_denied
handler500 = server_error
