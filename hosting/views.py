"""The hosting REST API under /api/v1/hosted/. Thin: access check, parse, one service call.

Link-policy models accept their link token as `?token=` or the `X-Link-Token` header.
"""

import json

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator.errors import NotFound
from hosting import access, services
from hosting.models import Via
from hosting.serializers import (
    HostedModelCreateSerializer,
    HostedModelDetailSerializer,
    HostedModelSerializer,
    HostedModelUpdateSerializer,
    HostedRunSerializer,
    HostedVersionCreateSerializer,
    HostedVersionSerializer,
    HostedVersionUpdateSerializer,
    LaunchSerializer,
    LinkSerializer,
    ShareSerializer,
)

TOKEN = OpenApiParameter("token", str, description="The link token of a link-policy model.", required=False)


def link_token(request) -> str | None:
    return request.query_params.get("token") or request.headers.get("X-Link-Token") or None


def _model(request, slug, *, manage=False):
    return access.get_model(request.user, slug, token=link_token(request), manage=manage)


def _run_context(request, **extra) -> dict:
    return {"request": request, "token": link_token(request), **extra}


def _parsed(serializer_class, request):
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class HostedListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Words in the title or description.", required=False),
            OpenApiParameter("tag", str, required=False),
        ],
        responses=HostedModelSerializer(many=True),
    )
    def get(self, request):
        models = access.visible_models(request.user).select_related("project", "author", "default_version")
        for word in (request.query_params.get("q") or "").split()[:8]:
            models = models.filter(Q(title__icontains=word) | Q(description__icontains=word) | Q(slug__icontains=word))
        tag = request.query_params.get("tag")
        if tag:
            models = models.filter(tags__icontains=json.dumps(tag.lower()))  # JSON text: SQLite and PostgreSQL
        context = {"request": request}
        return Response(HostedModelSerializer(models.order_by("title", "slug")[:200], many=True, context=context).data)

    @extend_schema(request=HostedModelCreateSerializer, responses={201: HostedModelDetailSerializer})
    def post(self, request):
        data = dict(_parsed(HostedModelCreateSerializer, request))
        model = services.publish(user=request.user, project_slug=data.pop("project"), data=data)
        return Response(HostedModelDetailSerializer(model, context={"request": request}).data, status=201)


class HostedDetailView(APIView):
    @extend_schema(parameters=[TOKEN], responses=HostedModelDetailSerializer)
    def get(self, request, slug):
        return Response(HostedModelDetailSerializer(_model(request, slug), context={"request": request}).data)

    @extend_schema(request=HostedModelUpdateSerializer, responses=HostedModelDetailSerializer)
    def patch(self, request, slug):
        model = _model(request, slug, manage=True)
        model = services.update_model(
            model=model, user=request.user, data=_parsed(HostedModelUpdateSerializer, request)
        )
        return Response(HostedModelDetailSerializer(model, context={"request": request}).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug):
        services.delete_model(model=_model(request, slug, manage=True), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HostedLinkView(APIView):
    @extend_schema(request=None, responses=LinkSerializer)
    def post(self, request, slug):
        """Issue a new link token; the previous link stops working."""
        model = _model(request, slug, manage=True)
        token = services.rotate_link(model=model, user=request.user)
        link = request.build_absolute_uri(f"/hosted/{model.slug}/?token={token}")
        return Response({"link": link, "token": token})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug):
        """Revoke the link: nobody gets in with a token until a new one is issued."""
        model = _model(request, slug, manage=True)
        services.revoke_link(model=model, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HostedShareView(APIView):
    @extend_schema(responses=ShareSerializer(many=True))
    def get(self, request, slug):
        return Response(access.shares_of(_model(request, slug, manage=True)))

    @extend_schema(request=ShareSerializer, responses=ShareSerializer(many=True))
    def post(self, request, slug):
        model = _model(request, slug, manage=True)
        return Response(services.set_share(model=model, user=request.user, **_parsed(ShareSerializer, request)))

    @extend_schema(request=ShareSerializer, responses={200: ShareSerializer(many=True)})
    def delete(self, request, slug):
        model = _model(request, slug, manage=True)
        data = _parsed(ShareSerializer, request)
        data.pop("launch", None)
        return Response(services.set_share(model=model, user=request.user, remove=True, **data))


class HostedVersionListView(APIView):
    @extend_schema(parameters=[TOKEN], responses=HostedVersionSerializer(many=True))
    def get(self, request, slug):
        versions = _model(request, slug).versions.select_related("routine_version__routine", "successor")
        return Response(HostedVersionSerializer(versions, many=True).data)

    @extend_schema(request=HostedVersionCreateSerializer, responses={201: HostedVersionSerializer})
    def post(self, request, slug):
        model = _model(request, slug, manage=True)
        version = services.add_version(
            model=model, user=request.user, data=_parsed(HostedVersionCreateSerializer, request)
        )
        return Response(HostedVersionSerializer(version).data, status=201)


class HostedVersionDetailView(APIView):
    @extend_schema(parameters=[TOKEN], responses=HostedVersionSerializer)
    def get(self, request, slug, number):
        return Response(HostedVersionSerializer(services.get_version(_model(request, slug), number)).data)

    @extend_schema(request=HostedVersionUpdateSerializer, responses=HostedVersionSerializer)
    def patch(self, request, slug, number):
        """Deprecate (runnable, with a warning and a successor), archive (no longer runnable) or reactivate."""
        model = _model(request, slug, manage=True)
        data = _parsed(HostedVersionUpdateSerializer, request)
        version = services.set_version_status(model=model, user=request.user, number=number, **data)
        return Response(HostedVersionSerializer(version).data)


class HostedRunListView(APIView):
    @extend_schema(parameters=[TOKEN], responses=HostedRunSerializer(many=True))
    def get(self, request, slug):
        """Your runs of the model; all runs (without their inputs, conf or outputs) for those who manage it."""
        model = _model(request, slug)
        runs = services.runs_for(request.user, model)[:200]
        return Response(HostedRunSerializer(runs, many=True, context=_run_context(request)).data)

    @extend_schema(parameters=[TOKEN], request=LaunchSerializer, responses={201: HostedRunSerializer})
    def post(self, request, slug):
        """Launch: `{"version", "conf", "inputs", "secrets", "project"}` -> the run, with its status URL."""
        token = link_token(request)
        model = _model(request, slug)
        data = _parsed(LaunchSerializer, request)
        run = services.launch(model=model, user=request.user, token=token, via=Via.API, **data)
        return Response(HostedRunSerializer(run, context=_run_context(request, detail=True)).data, status=201)


class HostedRunDetailView(APIView):
    @extend_schema(parameters=[TOKEN], responses=HostedRunSerializer)
    def get(self, request, slug, run_id):
        """A launcher keeps reading their own runs even after losing access to the model (e.g. a revoked link)."""
        try:
            run = services.get_run(request.user, _model(request, slug), run_id)
        except NotFound:
            run = services.own_run(request.user, slug, run_id)
            if run is None:
                raise
        return Response(HostedRunSerializer(run, context=_run_context(request, detail=True)).data)


class HostedUsageView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, slug):
        """Runs per version and per user, success rate and median duration; for those who manage the model."""
        return Response(services.usage(_model(request, slug, manage=True)))
