from django.urls import path

from interactive import views

urlpatterns = [
    path("jobs/<int:pk>/session/", views.JobSessionView.as_view(), name="job-session"),
    path("jobs/<int:pk>/session/stop/", views.JobSessionStopView.as_view(), name="job-session-stop"),
    path("jobs/<int:pk>/session/extend/", views.JobSessionExtendView.as_view(), name="job-session-extend"),
]
