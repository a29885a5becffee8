from django.urls import path

from accounts import views

urlpatterns = [
    path("oauth/device/token/", views.DeviceTokenView.as_view(), name="device-token"),
    path("oauth/device/access-token/", views.AccessTokenView.as_view(), name="device-access-token"),
    path("oauth/device/cas-token/", views.CasTokenView.as_view(), name="device-cas-token"),
]
