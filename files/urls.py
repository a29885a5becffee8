"""Included by accelerator/urls.py under `api/v1/`. Trailing slashes match what accli sends."""

from django.urls import path, re_path

from files import views, xet_views

urlpatterns = [
    # One pattern for the root ("files/") and every path below it, so path is "" for the root.
    re_path(r"^projects/(?P<slug>[-a-zA-Z0-9_]+)/files/(?P<path>.*)$", views.ProjectFilesView.as_view(), name="files"),
    path(
        "aterm-cli/<slug:slug>/jobstore-push-url/",
        views.JobstorePushUrlView.as_view(),
        name="files-jobstore-push-url",
    ),
    path("projects/<slug:slug>/jobstore/missing/", views.JobstoreMissingView.as_view(), name="files-jobstore-missing"),
    path("jobstore/upload/<str:token>/", views.JobstoreUploadView.as_view(), name="files-jobstore-upload"),
    # accli copy (download): list a prefix (base64, may hold '/'), then stat each file
    path(
        "aterm-cli/<slug:slug>/enumerate-all-files/<path:encoded>/",
        xet_views.EnumerateFilesView.as_view(),
        name="files-enumerate",
    ),
    path("aterm-cli/<slug:slug>/file-stat/", xet_views.FileStatView.as_view(), name="files-stat"),
]
