"""Refuse, up front, requests whose address carries a NUL character (%00).

PostgreSQL cannot store or compare text holding NUL, so a NUL that reaches a query (a search word, a
username in the path) would end as a 500. No valid address contains one: the request is answered 400,
in JSON under /api/ like every API error.
"""

from django.http import HttpResponseBadRequest, JsonResponse

DETAIL = "The address contains a NUL character (%00), which no name or search can hold; remove it."


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": DETAIL, "code": "invalid"}, status=400)
            return HttpResponseBadRequest(DETAIL, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
