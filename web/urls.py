"""The pages, included at the root by accelerator/urls.py (the REST API lives under /api/v1/)."""

from django.urls import path, re_path

from web import authoring_views, builder_views, dataset_views, interactive_views, views

urlpatterns = [
    path("projects/new/", authoring_views.project_new, name="web-project-new"),
    path("projects/<slug:slug>/", views.project_dashboard, name="web-project"),
    path("projects/<slug:slug>/members/", authoring_views.members, name="web-members"),
    path("projects/<slug:slug>/routines/new/", authoring_views.routine_new, name="web-routine-new"),
    path("routines/<int:pk>/edit/", authoring_views.routine_edit, name="web-routine-edit"),
    path("routines/<int:pk>/versions/", authoring_views.routine_versions, name="web-routine-versions"),
    path("routines/<int:pk>/versions/<int:number>/", authoring_views.routine_versions, name="web-routine-version"),
    path("routines/<int:pk>/sharing/", authoring_views.routine_sharing, name="web-routine-sharing"),
    path("routines/<int:pk>/copy/", authoring_views.routine_copy, name="web-routine-copy"),
    path("shared/", authoring_views.shared_with_me, name="web-shared"),
    path("projects/<slug:slug>/jobs/", views.job_list, name="web-project-jobs"),
    path("projects/<slug:slug>/dataset-templates/", dataset_views.template_list, name="web-dataset-templates"),
    path("projects/<slug:slug>/dataset-templates/new/", dataset_views.template_new, name="web-dataset-template-new"),
    path(
        "projects/<slug:slug>/dataset-templates/<slug:template_slug>/",
        dataset_views.template_page,
        name="web-dataset-template",
    ),
    path(
        "projects/<slug:slug>/dataset-templates/<slug:template_slug>/edit/",
        dataset_views.template_edit,
        name="web-dataset-template-edit",
    ),
    path(
        "projects/<slug:slug>/dataset-templates/<slug:template_slug>/public/",
        dataset_views.template_public,
        name="web-dataset-template-public",
    ),
    path(
        "projects/<slug:slug>/dataset-templates/<slug:template_slug>/delete/",
        dataset_views.template_delete,
        name="web-dataset-template-delete",
    ),
    re_path(r"^projects/(?P<slug>[-a-zA-Z0-9_]+)/files/(?P<path>.*)$", views.file_explorer, name="web-files"),
    path("routines/<int:pk>/", views.routine_page, name="web-routine"),
    path("projects/<slug:slug>/jobflows/new/", builder_views.builder_new, name="web-builder-new"),
    path("projects/<slug:slug>/jobflows/import/", builder_views.jobflow_import_new, name="web-jobflow-import-new"),
    path("jobflows/<int:pk>/", builder_views.jobflow_page, name="web-jobflow"),
    path("jobflows/<int:pk>/edit/", builder_views.builder_edit, name="web-builder-edit"),
    path("jobflows/<int:pk>/run/", builder_views.jobflow_run, name="web-jobflow-run"),
    path("jobflows/<int:pk>/export/", builder_views.jobflow_export, name="web-jobflow-export"),
    path("jobflows/<int:pk>/import/", builder_views.jobflow_import, name="web-jobflow-import"),
    path("jobs/", views.job_list, name="web-jobs"),
    path("jobs/<int:pk>/", views.job_page, name="web-job"),
    path("jobs/<int:pk>/log.txt", views.job_log, name="web-job-log"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="web-job-cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="web-job-retry"),
    path("jobs/<int:pk>/rerun/", views.job_rerun, name="web-job-rerun"),
    path("jobs/<int:pk>/session/stop/", interactive_views.session_stop, name="web-session-stop"),
    path("jobs/<int:pk>/session/extend/", interactive_views.session_extend, name="web-session-extend"),
]
