"""A conversation as a Markdown transcript a person can read: the active branch only.

The JSON export (the whole tree, re-importable) is ``chatui.codec``; this is the
readable one. Reasoning folds into a ``<details>`` block, sources are listed
under the answer that cites them, and a stopped or failed answer says so.
"""

from __future__ import annotations

from chatui import tree
from chatui.tree import Conversation, Message

ROLE_HEADINGS = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool"}


def conversation_markdown(conversation: Conversation) -> str:
    """The title, the system prompt if any, then each message of the active branch."""
    parts = [f"# {conversation.title}"]
    if conversation.settings.system_prompt:
        parts.append("## System prompt\n\n" + _quote(conversation.settings.system_prompt))
    parts.extend(_message_markdown(m) for m in tree.active_path(conversation))
    return "\n\n".join(parts) + "\n"


def _message_markdown(message: Message) -> str:
    heading = ROLE_HEADINGS.get(message.role, message.role.title())
    if message.role == "assistant" and message.model:
        heading += f" ({message.model})"
    parts = [f"## {heading}"]
    if message.reasoning:
        parts.append(
            f"<details><summary>Reasoning</summary>\n\n{message.reasoning.strip()}\n\n</details>"
        )
    if message.content:
        parts.append(message.content.strip())
    for call in message.tool_calls:
        parts.append(f"Tool call `{call.name}`:\n\n```json\n{call.arguments}\n```")
    if message.sources:
        lines = [f"{s.number}. {s.document}" + (f", page {s.page}" if s.page else "")
                 for s in message.sources]
        parts.append("**Sources**\n\n" + "\n".join(lines))
    if message.status == "stopped":
        parts.append("*(stopped before the end)*")
    elif message.status == "error":
        parts.append(f"*(the answer broke off: {message.error or 'unknown error'})*")
    return "\n\n".join(parts)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())
