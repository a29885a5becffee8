from rest_framework import authentication, exceptions

from accelerator.errors import AuthFailed
from accounts.services import parse_cas_token, user_for_access_token


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


class CasTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer xet_session_prj_<slug>_<access token>`, as accli and hf_xet send it to /api/xet-cas/.

    `request.auth` is the parsed `CasToken`: the views take the project from it.
    """

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("bearer "):
            return None
        try:
            token = parse_cas_token(header[7:].strip())
            if token is None:
                raise exceptions.AuthenticationFailed("This endpoint takes the Xet token accli makes; run accli copy.")
            return (user_for_access_token(token.access_token), token)
        except AuthFailed as exc:
            raise exceptions.AuthenticationFailed(exc.detail) from None

    def authenticate_header(self, request):
        return 'Bearer realm="xet-cas"'
