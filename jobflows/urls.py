from django.urls import path

from jobflows import views

urlpatterns = [
    path("projects/<slug:slug>/jobflows/", views.JobflowListView.as_view(), name="jobflow-list"),
    path("jobflows/<int:pk>/", views.JobflowDetailView.as_view(), name="jobflow-detail"),
    path("jobflows/<int:pk>/versions/", views.JobflowVersionListView.as_view(), name="jobflow-versions"),
    path("jobflows/<int:pk>/run/", views.JobflowRunView.as_view(), name="jobflow-run"),
    path("jobflows/<int:pk>/export/", views.JobflowExportView.as_view(), name="jobflow-export"),
]
