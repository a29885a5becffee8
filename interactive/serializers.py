from rest_framework import serializers


class SessionExtendSerializer(serializers.Serializer):
    seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Default: ACC_INTERACTIVE_EXTEND_STEP.",
    )
