"""Rate limits of accli's token endpoints, per client address (DRF throttling, counted in the shared cache)."""

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import ScopedRateThrottle


class TokenRateThrottle(ScopedRateThrottle):
    """ScopedRateThrottle whose rates are read from settings at each request (DRF reads them once at import)."""

    def get_rate(self):
        return (settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}).get(self.scope)


class TokenThrottleMixin:
    """For an APIView: throttled per `throttle_scope`; the 429 says what happened and when to try again."""

    throttle_classes = [TokenRateThrottle]

    def throttled(self, request, wait):
        raise Throttled(wait=wait, detail="Too many token requests from your address; wait before trying again.")
