"""Fork: copy the path from the first message down to one message into a new chat.

The new chat has the same owner and settings, fresh ids (its own tree from
then on), and shows the copied path; the source chat is not touched. Its
documents are not copied: attach them again in the new chat if needed.
"""

from __future__ import annotations

from dataclasses import replace

from chatui import tree
from chatui.service import ChatService
from chatui.settings import MAX_NAME
from chatui.tree import Conversation

SUFFIX = " (fork)"


def forked(conversation: Conversation, message_id: str, now: float | None = None
           ) -> Conversation:
    """A new conversation holding ``path_to(message_id)`` of ``conversation``, fresh ids."""
    path = tree.path_to(conversation, message_id)
    base = conversation.title[: MAX_NAME - len(SUFFIX)].rstrip() or "Chat"
    result = tree.new_conversation(base + SUFFIX, conversation.settings,
                                   conversation.owner, now)
    ids = {message.id: tree.new_id() for message in path}
    for message in path:
        copy = replace(message, id=ids[message.id],
                       parent_id=ids[message.parent_id] if message.parent_id else None)
        result = tree.add_message(result, copy)
    return result


def fork(service: ChatService, conversation_id: str, message_id: str, owner: str
         ) -> Conversation:
    """Store the fork of ``owner``'s conversation at ``message_id``; another's is NotFound."""
    new = forked(service.conversation(conversation_id, owner), message_id)
    service.store.save(new)
    return new
