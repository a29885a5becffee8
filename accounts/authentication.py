from rest_framework import authentication, exceptions

from accelerator.errors import AuthFailed
from accounts.services import user_for_access_token


class AccessTokenAuthentication(authentication.BaseAuthentication):
    """`x-authorization: <access token>` as accli sends it; `Authorization: Bearer <token>` also works."""

    def authenticate(self, request):
        raw = request.META.get("HTTP_X_AUTHORIZATION", "").strip()
        if not raw:
            header = request.META.get("HTTP_AUTHORIZATION", "")
            if header.lower().startswith("bearer "):
                raw = header[7:].strip()
        if not raw:
            return None
        try:
            return (user_for_access_token(raw), raw)
        except AuthFailed as exc:
            raise exceptions.AuthenticationFailed(exc.detail) from None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
