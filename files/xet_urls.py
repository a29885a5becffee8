"""Included by accelerator/urls.py under `api/xet-cas/`: the paths hf_xet builds from the CAS URL accli gives it."""

from django.urls import path

from files import xet_views

urlpatterns = [
    path("v1/chunks/<str:prefix>/<str:chunk>", xet_views.DedupeView.as_view(), name="xet-dedupe"),
    path("v1/xorbs/<str:prefix>/<str:xorb>", xet_views.XorbView.as_view(), name="xet-xorb"),
    path("v1/shards", xet_views.ShardView.as_view(), name="xet-shard"),
    path("v1/reconstructions/<str:file_id>", xet_views.ReconstructionView.as_view(), name="xet-reconstruction"),
    path("v2/reconstructions/<str:file_id>", xet_views.ReconstructionV2View.as_view(), name="xet-reconstruction-v2"),
    path("v1/fetch/<str:token>", xet_views.FetchView.as_view(), name="xet-fetch"),
    path("v1/cas/bulk-register", xet_views.BulkRegisterView.as_view(), name="xet-bulk-register"),
]
