"""The hosting pages, included at the root by accelerator/urls.py before web.urls (the REST API is hosting.urls)."""

from django.urls import path

from hosting import pages

urlpatterns = [
    path("hosted/", pages.catalog, name="web-hosted-catalog"),
    path("hosted/new/", pages.publish, name="web-hosted-new"),
    path("hosted/<slug:slug>/", pages.model_page, name="web-hosted"),
    path("hosted/<slug:slug>/manage/", pages.manage, name="web-hosted-manage"),
    path("hosted/<slug:slug>/widget/", pages.widget, name="web-hosted-widget"),
    path("hosted/<slug:slug>/widget/runs/<int:run_id>/", pages.widget_run, name="web-hosted-widget-run"),
]
