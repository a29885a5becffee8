"""Start-up checks of the pages: the Run form needs json-editor from node_modules."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def json_editor_installed(app_configs, **kwargs):
    dist = getattr(settings, "JSON_EDITOR_DIST", None)
    if dist is None or not (dist / "jsoneditor.js").is_file():
        return [
            Warning(
                "@json-editor/json-editor is not installed, so routine pages cannot render their Run form.",
                hint="Run `make install` (or `npm ci`) in the project root.",
                id="web.W001",
            )
        ]
    return []
