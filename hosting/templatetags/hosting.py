"""Template helpers of the hosting pages: an author's Markdown, rendered without raw HTML."""

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

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


@register.filter
def percent(fraction):
    return "—" if fraction is None else f"{round(fraction * 100)} %"
