"""Template helpers of the hosting pages; an author's Markdown is rendered by web's one filter."""

from django import template

from web.templatetags.web import markdown

register = template.Library()
register.filter("markdown", markdown)


@register.filter
def percent(fraction):
    return "—" if fraction is None else f"{round(fraction * 100)} %"
