import math
from urllib.parse import urlsplit

from axes.helpers import get_cool_off
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

from accelerator.api_errors import ErrorSerializer
from accounts import services
from accounts.authentication import CasTokenAuthentication
from accounts.throttles import TokenThrottleMixin


class LoginView(auth_views.LoginView):
    """Django's sign-in page; after it, a visitor may also be sent back to the session proxy's own origin.

    Its form authenticates with the request, so django-axes (first authentication backend) counts failures
    per username and per address and refuses a locked sign-in (see `locked_out`).
    """

    def get_success_url_allowed_hosts(self):
        return {*super().get_success_url_allowed_hosts(), urlsplit(settings.ACC_INTERACTIVE_BASE_URL).netloc}


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked sign-in (AXES_LOCKOUT_CALLABLE): 429, a page saying for how long."""
    cool_off = get_cool_off(request)
    seconds = max(1, math.ceil(cool_off.total_seconds())) if cool_off else 0
    response = render(request, "registration/locked.html", {"minutes": max(1, math.ceil(seconds / 60))}, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


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


class DeviceTokenView(TokenThrottleMixin, APIView):
    """accli login: the pasted code -> a refresh token (a bare JSON string)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "token-exchange"

    @extend_schema(
        request=inline_serializer("DeviceCode", {"device_authorization_code": serializers.CharField()}),
        responses={200: str},
    )
    def post(self, request):
        code = request.data.get("device_authorization_code") if isinstance(request.data, dict) else None
        return Response(services.exchange_auth_code(code=code if isinstance(code, str) else ""))


class AccessTokenView(TokenThrottleMixin, APIView):
    """Before each accli command: refresh token -> access token + rotated refresh token."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "token-refresh"

    @extend_schema(
        request=inline_serializer("RefreshToken", {"refresh_token": serializers.CharField()}),
        responses={
            200: inline_serializer(
                "TokenPair", {"access_token": serializers.CharField(), "refresh_token": serializers.CharField()}
            ),
            401: ErrorSerializer,
        },
    )
    def post(self, request):
        token = request.data.get("refresh_token") if isinstance(request.data, dict) else None
        return Response(services.rotate_refresh_token(refresh_token=token if isinstance(token, str) else ""))


class CasTokenView(APIView):
    """hf_xet's token refresh (accli passes this URL): the Xet token it holds, with its real expiry.

    A Xet token wraps an access token, so it lives exactly as long; a new one
    comes only from the refresh token, which `accli` exchanges itself.
    """

    authentication_classes = [CasTokenAuthentication]

    @extend_schema(
        summary="The Xet token's expiry and the CAS URL (hf_xet's token refresh)",
        responses={
            200: inline_serializer(
                "XetToken",
                {
                    "accessToken": serializers.CharField(),
                    "exp": serializers.IntegerField(),
                    "casUrl": serializers.URLField(),
                },
            ),
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
    )
    def get(self, request):
        token = request.auth
        return Response(
            {
                "accessToken": token.raw,
                "exp": services.access_token_expiry(token.access_token),
                "casUrl": request.build_absolute_uri("/api/xet-cas"),
            }
        )
