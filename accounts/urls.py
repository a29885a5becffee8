from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("acli-auth-code", views.acli_auth_code, name="acli-auth-code"),
    path("acli-auth-code/", views.acli_auth_code),
    path("", views.home, name="home"),
]
