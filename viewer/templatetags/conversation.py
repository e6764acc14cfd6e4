"""{% chat llm as turns %}: an LLM call's prompt messages and response as chat turns (viewer/conversation.py)."""

from django import template

from .. import conversation

register = template.Library()


@register.simple_tag
def chat(llm) -> list:
    return conversation.chat(llm)
