from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services


class LoginView(auth_views.LoginView):
    """Django's sign-in page; after it, a visitor may also be sent back to the session proxy's own origin."""

    def get_success_url_allowed_hosts(self):
        return {*super().get_success_url_allowed_hosts(), urlsplit(settings.ACC_INTERACTIVE_BASE_URL).netloc}


@never_cache
@login_required
def acli_auth_code(request):
    """Shows a fresh single-use code to paste into `accli login`."""
    code = services.mint_auth_code(user=request.user)
    return render(request, "accounts/acli_auth_code.html", {"code": code, "ttl_minutes": 5})


@login_required
def home(request):
    from routines.permissions import visible_projects

    return render(request, "accounts/home.html", {"projects": visible_projects(request.user)})


class DeviceTokenView(APIView):
    """accli login: the pasted code -> a refresh token (a bare JSON string)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=inline_serializer("DeviceCode", {"device_authorization_code": serializers.CharField()}),
        responses={200: str},
    )
    def post(self, request):
        code = request.data.get("device_authorization_code") if isinstance(request.data, dict) else None
        return Response(services.exchange_auth_code(code=code or ""))


class AccessTokenView(APIView):
    """Before each accli command: refresh token -> access token + rotated refresh token."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=inline_serializer("RefreshToken", {"refresh_token": serializers.CharField()}),
        responses={
            200: inline_serializer(
                "TokenPair", {"access_token": serializers.CharField(), "refresh_token": serializers.CharField()}
            )
        },
    )
    def post(self, request):
        token = request.data.get("refresh_token") if isinstance(request.data, dict) else None
        return Response(services.rotate_refresh_token(refresh_token=token or ""))
