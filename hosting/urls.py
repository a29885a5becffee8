from django.urls import path

from hosting import views

urlpatterns = [
    path("hosted/", views.HostedListView.as_view(), name="hosted-list"),
    path("hosted/<slug:slug>/", views.HostedDetailView.as_view(), name="hosted-detail"),
    path("hosted/<slug:slug>/link/", views.HostedLinkView.as_view(), name="hosted-link"),
    path("hosted/<slug:slug>/shares/", views.HostedShareView.as_view(), name="hosted-shares"),
    path("hosted/<slug:slug>/versions/", views.HostedVersionListView.as_view(), name="hosted-versions"),
    path("hosted/<slug:slug>/versions/<int:number>/", views.HostedVersionDetailView.as_view(), name="hosted-version"),
    path("hosted/<slug:slug>/runs/", views.HostedRunListView.as_view(), name="hosted-runs"),
    path("hosted/<slug:slug>/runs/<int:run_id>/", views.HostedRunDetailView.as_view(), name="hosted-run"),
    path("hosted/<slug:slug>/usage/", views.HostedUsageView.as_view(), name="hosted-usage"),
]
