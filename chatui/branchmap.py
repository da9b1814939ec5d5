"""The branch map of a conversation: its whole tree laid out as rows, and answers compared.

Pure: a ``Conversation`` in, plain frozen values out (no I/O, no HTML; the page
draws them in ``chatui.ui.branchmap``, the REST API sends them as JSON).

Layout: the messages in depth-first order, oldest sibling first (the order of
the chat's "2/3"). A chain of only children stays at one indent; the children of a
message with several become one level deeper each, so a branch point reads as
an indented list of alternatives. ``rows`` folds long chains off the active
path into a ``Run`` (its first and last messages stay visible), so that a chat
of hundreds of messages and dozens of branches stays a short page.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatui import tree
from chatui.errors import InvalidRequest
from chatui.store import shorten
from chatui.tree import Conversation, Message, Role

PREVIEW_CHARS = 80
RUN_KEEP = 2  # messages of a folded chain shown at each end
RUN_MIN = 2 * RUN_KEEP + 2  # a chain this long (or longer) off the active path is folded


@dataclass(frozen=True, slots=True)
class Node:
    """One message on the map. ``position`` of ``siblings`` is its "2/3"."""

    id: str
    parent_id: str | None
    role: Role
    preview: str  # the first words, whitespace folded
    model: str | None
    status: str
    created_at: float
    depth: int  # how many branch points lie above it
    position: int
    siblings: int
    children: int
    active: bool  # on the path the chat shows
    current: bool  # the active path's last message


@dataclass(frozen=True, slots=True)
class Run:
    """Messages of one chain off the active path, folded: ``nodes`` in order."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class BranchMap:
    conversation_id: str
    current_leaf_id: str | None
    nodes: tuple[Node, ...]  # depth-first, oldest sibling first
    branches: int  # leaves: how many different paths there are


@dataclass(frozen=True, slots=True)
class Side:
    """One of two answers compared: its text and how it was made."""

    id: str
    content: str
    model: str | None
    tokens: int | None
    tokens_per_second: float | None
    ttft_ms: float | None
    position: int
    siblings: int
    status: str


def branch_map(conversation: Conversation) -> BranchMap:
    by_parent: dict[str | None, list[Message]] = {}
    for message in conversation.messages.values():
        by_parent.setdefault(message.parent_id, []).append(message)
    place: dict[str, int] = {}  # id -> 1-based place among its siblings
    for group in by_parent.values():
        group.sort(key=lambda m: (m.created_at, m.id))
        place.update((m.id, index) for index, m in enumerate(group, start=1))
    active = {m.id for m in tree.active_path(conversation)} if conversation.messages else set()
    nodes: list[Node] = []
    stack: list[tuple[Message, int]] = [(m, 0) for m in reversed(by_parent.get(None, []))]
    while stack:
        message, depth = stack.pop()
        kids = by_parent.get(message.id, [])
        nodes.append(Node(
            id=message.id, parent_id=message.parent_id, role=message.role,
            preview=shorten(message.content, PREVIEW_CHARS), model=message.model,
            status=message.status, created_at=message.created_at, depth=depth,
            position=place[message.id], siblings=len(by_parent[message.parent_id]),
            children=len(kids),
            active=message.id in active, current=message.id == conversation.current_leaf_id,
        ))
        below = depth + 1 if len(kids) > 1 else depth
        stack.extend((kid, below) for kid in reversed(kids))
    leaves = sum(1 for node in nodes if node.children == 0)
    return BranchMap(conversation.id, conversation.current_leaf_id, tuple(nodes), leaves)


def rows(mapped: BranchMap) -> tuple[Node | Run, ...]:
    """The nodes to draw, long chains off the active path folded into ``Run``s."""
    result: list[Node | Run] = []
    chain: list[Node] = []

    def flush() -> None:
        if len(chain) >= RUN_MIN:
            result.extend(chain[:RUN_KEEP])
            result.append(Run(tuple(chain[RUN_KEEP:-RUN_KEEP])))
            result.extend(chain[-RUN_KEEP:])
        else:
            result.extend(chain)
        chain.clear()

    for node in mapped.nodes:
        continues = (bool(chain) and not node.active and node.siblings == 1
                     and node.parent_id == chain[-1].id)
        if not continues:
            flush()
        if node.active:
            result.append(node)
        else:
            chain.append(node)
    flush()
    return tuple(result)


def compare(conversation: Conversation, first_id: str, second_id: str) -> tuple[Side, Side]:
    """Two different answers to the same question, side by side."""
    first, second = conversation.message(first_id), conversation.message(second_id)
    if first.id == second.id:
        raise InvalidRequest("Pick two different answers to compare.")
    if first.role != "assistant" or second.role != "assistant":
        raise InvalidRequest("Only answers can be compared.")
    if first.parent_id != second.parent_id:
        raise InvalidRequest("Pick two answers to the same question (siblings) to compare.")
    return _side(conversation, first), _side(conversation, second)


def _side(conversation: Conversation, message: Message) -> Side:
    position, count = tree.sibling_position(conversation, message.id)
    timings = message.timings
    return Side(
        id=message.id, content=message.content, model=message.model,
        tokens=timings.generated_tokens if timings else None,
        tokens_per_second=timings.tokens_per_second if timings else None,
        ttft_ms=timings.ttft_ms if timings else None,
        position=position, siblings=count, status=message.status,
    )
