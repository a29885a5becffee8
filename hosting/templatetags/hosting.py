"""Template helpers of the hosting pages: an author's Markdown, rendered without raw HTML."""

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def markdown(text: str):
    """Markdown as HTML; nh3 then keeps only safe tags and attributes (no script, no event handlers)."""
    html = markdown_lib.markdown(text or "", extensions=["fenced_code", "tables"])
    return mark_safe(nh3.clean(html))


@register.filter
def percent(fraction):
    return "—" if fraction is None else f"{round(fraction * 100)} %"
