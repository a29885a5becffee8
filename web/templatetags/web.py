"""Template helpers of the pages: times in the viewer's zone, status badges, the project switcher, Markdown.

`markdown` is the one way user text becomes HTML: the hosting pages use it from here (web sits below hosting).
"""

import markdown as markdown_lib
import nh3
from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from routines.permissions import visible_projects

register = template.Library()

# What Markdown itself produces (fenced code and tables included); nothing else survives nh3.
_TAGS = {
    *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code"),
    *("em", "strong", "del", "ul", "ol", "li", "a", "img"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}
_SCHEMES = {"http", "https", "mailto"}


def _markdown_without_html() -> markdown_lib.Markdown:
    """Markdown whose raw HTML (blocks and inline tags) stays text: `<b>` is shown as `<b>`, never parsed."""
    md = markdown_lib.Markdown(
        extensions=["fenced_code", "tables"], extension_configs={"tables": {"use_align_attribute": True}}
    )
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


@register.filter
def markdown(text: str):
    """Markdown as HTML. Raw HTML in the source is escaped, and nh3 then keeps only Markdown's own tags and
    attributes, with http(s)/mailto links: no script, no event handlers, no style, no javascript: URLs."""
    html = _markdown_without_html().convert(text or "")
    return mark_safe(nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES))


@register.simple_tag(takes_context=True)
def nav_projects(context):
    """The signed-in user's projects for the switcher (one query, once per page)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    if not hasattr(request, "_nav_projects"):
        request._nav_projects = list(visible_projects(user).only("slug", "name"))
    return request._nav_projects


@register.filter
def when(value, style: str = "medium"):
    """A timestamp as <time datetime=ISO>; static/js/app.js formats it in the viewer's time zone."""
    if not value:
        return mark_safe('<span class="muted">—</span>')
    iso = value.isoformat()
    fallback = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html('<time datetime="{}" data-style="{}">{}</time>', iso, style, fallback)


@register.filter
def badge(status: str):
    status = status or "UNKNOWN"
    return format_html('<span class="badge status-{}" data-status="{}">{}</span>', status, status, status)


@register.filter
def duration(seconds):
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min"


@register.simple_tag
def url_filters(filters, **paging):
    """The query string of a job list's filters plus a page cursor (before= or after=)."""
    return filters.query(**paging)
