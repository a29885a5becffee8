"""The dataset template API: members manage a project's templates; accli validate reads one by slug.

Thin: authorise (routines.permissions), shape the body, call one service (routines.dataset_templates).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accelerator.api_errors import ErrorSerializer
from routines import dataset_templates as templates
from routines import permissions
from routines.models import DatasetTemplate

RULES_HELP = (
    "What accli validate checks each CSV row against: `root` (the JSON Schema of one row, lower-case column "
    "names, string cells), `root_schema_declarations` (`time_dimension`, `value_dimension`, `region_dimension`, "
    "`region_layer_map_key`), `map_<column>` objects of allowed values (`map_<region_dimension>` entries carry a "
    "`region_layer`) and optional `template_validators`."
)


class DatasetTemplateSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text="The project's slug.")
    created_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of who created it; null when that account is gone.",
    )
    rules = serializers.JSONField(help_text=RULES_HELP)

    class Meta:
        model = DatasetTemplate
        fields = ["project", "slug", "name", "description", "public", "rules", "created_by", "created_at", "updated_at"]
        read_only_fields = fields


class PublicDatasetTemplateSerializer(serializers.ModelSerializer):
    """What anyone may read of a public template: enough for accli validate, nothing about people."""

    project = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text="The project's slug.")
    rules = serializers.JSONField(help_text=RULES_HELP)

    class Meta:
        model = DatasetTemplate
        fields = ["project", "slug", "name", "description", "public", "rules", "updated_at"]
        read_only_fields = fields


class DatasetTemplateWriteSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=64, help_text="1-64 lower-case letters, digits and hyphens.")
    name = serializers.CharField(max_length=templates.NAME_MAX, required=False, allow_blank=True)
    description = serializers.CharField(max_length=templates.DESCRIPTION_MAX, required=False, allow_blank=True)
    public = serializers.BooleanField(
        required=False, help_text="Anyone may read it (accli validate reads templates without signing in)."
    )
    rules = serializers.JSONField(help_text=RULES_HELP)


class DatasetTemplatePatchSerializer(DatasetTemplateWriteSerializer):
    slug = serializers.CharField(max_length=64, required=False)
    name = serializers.CharField(max_length=templates.NAME_MAX, required=False)
    rules = serializers.JSONField(required=False, help_text=RULES_HELP)


def _valid(serializer_class, request, **kwargs) -> dict:
    data = serializer_class(data=request.data, **kwargs)
    data.is_valid(raise_exception=True)
    return data.validated_data


class DatasetTemplateListView(APIView):
    @extend_schema(summary="A project's dataset templates", responses=DatasetTemplateSerializer(many=True))
    def get(self, request, slug: str):
        project = permissions.get_project(request.user, slug)
        return Response(DatasetTemplateSerializer(templates.project_templates(project=project), many=True).data)

    @extend_schema(
        summary="Create a dataset template (owners and maintainers)",
        request=DatasetTemplateWriteSerializer,
        responses={201: DatasetTemplateSerializer},
    )
    def post(self, request, slug: str):
        project = permissions.get_project(request.user, slug)
        data = _valid(DatasetTemplateWriteSerializer, request)
        template = templates.create_template(project=project, actor=request.user, **data)
        return Response(DatasetTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class DatasetTemplateDetailView(APIView):
    @extend_schema(summary="One dataset template", responses=DatasetTemplateSerializer)
    def get(self, request, slug: str, template_slug: str):
        project = permissions.get_project(request.user, slug)
        return Response(DatasetTemplateSerializer(templates.get_template(project=project, slug=template_slug)).data)

    @extend_schema(
        summary="Change a dataset template (owners and maintainers); fields left out stay",
        request=DatasetTemplatePatchSerializer,
        responses=DatasetTemplateSerializer,
    )
    def patch(self, request, slug: str, template_slug: str):
        project = permissions.get_project(request.user, slug)
        template = templates.get_template(project=project, slug=template_slug)
        data = _valid(DatasetTemplatePatchSerializer, request)
        template = templates.update_template(template=template, actor=request.user, **data)
        return Response(DatasetTemplateSerializer(template).data)

    @extend_schema(summary="Delete a dataset template (owners and maintainers)", request=None, responses={204: None})
    def delete(self, request, slug: str, template_slug: str):
        project = permissions.get_project(request.user, slug)
        templates.delete_template(
            template=templates.get_template(project=project, slug=template_slug), actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetTemplateBySlugView(APIView):
    """What `accli validate` reads, without credentials: a public template for anyone, any for its members."""

    permission_classes = [AllowAny]

    @extend_schema(
        summary="A dataset template for accli validate (public ones need no sign-in)",
        responses={
            200: PublicDatasetTemplateSerializer,
            401: OpenApiResponse(ErrorSerializer, description="Credentials were sent and are not valid."),
            403: OpenApiResponse(
                ErrorSerializer,
                description="Not signed in, and the template is not public or does not exist (answered alike).",
            ),
            404: OpenApiResponse(
                ErrorSerializer,
                description="Signed in, and the template is not visible to you or does not exist.",
            ),
        },
    )
    def get(self, request, slug: str, template_slug: str):
        template = templates.readable_by_slug(user=request.user, project_slug=slug, slug=template_slug)
        return Response(PublicDatasetTemplateSerializer(template).data)
