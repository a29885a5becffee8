"""The pages, included at the root by accelerator/urls.py (the REST API lives under /api/v1/)."""

from django.urls import path, re_path

from web import interactive_views, views

urlpatterns = [
    path("projects/<slug:slug>/", views.project_dashboard, name="web-project"),
    path("projects/<slug:slug>/jobs/", views.job_list, name="web-project-jobs"),
    re_path(r"^projects/(?P<slug>[-a-zA-Z0-9_]+)/files/(?P<path>.*)$", views.file_explorer, name="web-files"),
    path("routines/<int:pk>/", views.routine_page, name="web-routine"),
    path("jobs/", views.job_list, name="web-jobs"),
    path("jobs/<int:pk>/", views.job_page, name="web-job"),
    path("jobs/<int:pk>/log.txt", views.job_log, name="web-job-log"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="web-job-cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="web-job-retry"),
    path("jobs/<int:pk>/rerun/", views.job_rerun, name="web-job-rerun"),
    path("jobs/<int:pk>/session/stop/", interactive_views.session_stop, name="web-session-stop"),
    path("jobs/<int:pk>/session/extend/", interactive_views.session_extend, name="web-session-extend"),
]
