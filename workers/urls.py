from django.urls import path

from workers import views

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/logs/", views.JobLogsView.as_view(), name="job-logs"),
    path("jobs/<int:pk>/why/", views.JobWhyView.as_view(), name="job-why"),
    path("jobs/<int:pk>/directory/", views.JobDirectoryView.as_view(), name="job-directory"),
    path("jobs/<int:pk>/cancel/", views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/retry/", views.RetryView.as_view(), name="jobflow-retry"),
    path("routines/<int:pk>/run/", views.RoutineRunView.as_view(), name="routine-run"),
    path("aterm-cli/<slug:slug>/jobs/dispatch/", views.DispatchView.as_view(), name="accli-dispatch"),
]
