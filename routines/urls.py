from django.urls import path

from routines import dataset_views, views

urlpatterns = [
    path("projects/", views.ProjectListView.as_view(), name="project-list"),
    path("projects/<slug:slug>/", views.ProjectDetailView.as_view(), name="project-detail"),
    path("projects/<slug:slug>/members/", views.MemberListView.as_view(), name="member-list"),
    path("projects/<slug:slug>/members/<str:username>/", views.MemberDetailView.as_view(), name="member-detail"),
    path("projects/<slug:slug>/routines/", views.RoutineListView.as_view(), name="routine-list"),
    path(
        "projects/<slug:slug>/dataset-templates/",
        dataset_views.DatasetTemplateListView.as_view(),
        name="dataset-template-list",
    ),
    path(
        "projects/<slug:slug>/dataset-templates/<slug:template_slug>/",
        dataset_views.DatasetTemplateDetailView.as_view(),
        name="dataset-template-detail",
    ),
    # what accli validate asks for (AcceleratorTerminalCliProjectService.get_dataset_template_details)
    path(
        "projects/<slug:slug>/dataset-templates/<slug:template_slug>/by-slug/",
        dataset_views.DatasetTemplateBySlugView.as_view(),
        name="dataset-template-by-slug",
    ),
    path("routines/<int:pk>/", views.RoutineDetailView.as_view(), name="routine-detail"),
    path("routines/<int:pk>/versions/", views.RoutineVersionListView.as_view(), name="routine-versions"),
]
