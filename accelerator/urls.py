from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from our static files, started by a script of its own (?script): works offline and under the CSP
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("routines.urls")),
    path("api/v1/", include("workers.urls")),
    path("api/v1/", include("interactive.urls")),
    path("api/v1/", include("files.urls")),
    path("api/v1/", include("hosting.urls")),
    path("", include("hosting.page_urls")),
    path("", include("web.urls")),
    path("", include("accounts.urls")),
]

# A path under /api/ that names no endpoint (e.g. /api/v1/jobs/abc/) is answered in JSON like every API error.
handler404 = "accelerator.api_errors.page_not_found"
