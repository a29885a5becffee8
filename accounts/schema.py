"""Describes the x-authorization access token in the OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AccessTokenAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "x-authorization",
            "description": "Access token from POST /api/v1/oauth/device/access-token/.",
        }


class CasTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.CasTokenAuthentication"
    name = "xetToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "accli's Xet token: xet_session_prj_<project slug>_<access token>.",
        }
