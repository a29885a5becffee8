from django.urls import path

from routines import views

urlpatterns = [
    path("projects/", views.ProjectListView.as_view(), name="project-list"),
    path("projects/<slug:slug>/", views.ProjectDetailView.as_view(), name="project-detail"),
    path("projects/<slug:slug>/members/", views.MemberListView.as_view(), name="member-list"),
    path("projects/<slug:slug>/members/<str:username>/", views.MemberDetailView.as_view(), name="member-detail"),
    path("projects/<slug:slug>/routines/", views.RoutineListView.as_view(), name="routine-list"),
    path("routines/<int:pk>/", views.RoutineDetailView.as_view(), name="routine-detail"),
    path("routines/<int:pk>/versions/", views.RoutineVersionListView.as_view(), name="routine-versions"),
]
