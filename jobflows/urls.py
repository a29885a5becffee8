from django.urls import path

from jobflows import views

urlpatterns = [
    path("jobs/<int:pk>/retry/", views.RetryView.as_view(), name="jobflow-retry"),
]
