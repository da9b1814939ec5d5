"""The conversation tree: branches, the active path, and that nothing is lost."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chatui.errors import InvalidRequest, NotFound
from chatui.tree import (
    Conversation,
    Message,
    Role,
    active_path,
    add_message,
    delete_subtree,
    make_message,
    new_conversation,
    path_to,
    replace_message,
    sibling_position,
    siblings,
    switch_sibling,
    switch_to,
    title_from,
)


def message(name: str, parent: str | None, role: Role, at: float) -> Message:
    return Message(id=name, parent_id=parent, role=role, content=name, created_at=at)


def branched() -> Conversation:
    """q1 -> a1 -> q2 -> a2, then a1 regenerated as a1b, which is shown.

    q1 ─┬─ a1 ── q2 ── a2
        └─ a1b
    """
    conversation = new_conversation(now=0.0)
    for item in (
        message("q1", None, "user", 1.0),
        message("a1", "q1", "assistant", 2.0),
        message("q2", "a1", "user", 3.0),
        message("a2", "q2", "assistant", 4.0),
        message("a1b", "q1", "assistant", 5.0),
    ):
        conversation = add_message(conversation, item)
    return conversation


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


def test_add_message_makes_it_the_current_leaf_and_leaves_the_original_alone() -> None:
    before = branched()
    added = add_message(before, message("q3", "a2", "user", 9.0))

    assert added.current_leaf_id == "q3"
    assert added.updated_at == 9.0
    assert ids(active_path(added)) == ["q1", "a1", "q2", "a2", "q3"]
    assert "q3" not in before.messages
    assert before.current_leaf_id == "a1b"


def test_add_message_refuses_a_duplicate_id_or_an_unknown_parent() -> None:
    conversation = branched()
    with pytest.raises(InvalidRequest):
        add_message(conversation, message("a1", "q1", "assistant", 9.0))
    with pytest.raises(NotFound):
        add_message(conversation, message("x", "nowhere", "user", 9.0))


def test_siblings_are_oldest_first() -> None:
    conversation = branched()
    assert ids(siblings(conversation, "a1b")) == ["a1", "a1b"]
    assert ids(siblings(conversation, "q1")) == ["q1"]
    assert ids(siblings(conversation, "q2")) == ["q2"]


@pytest.mark.parametrize(
    ("message_id", "position"), [("a1", (1, 2)), ("a1b", (2, 2)), ("q1", (1, 1)), ("a2", (1, 1))]
)
def test_sibling_position(message_id: str, position: tuple[int, int]) -> None:
    assert sibling_position(branched(), message_id) == position


def test_active_path_runs_from_the_root_to_the_current_leaf() -> None:
    assert ids(active_path(branched())) == ["q1", "a1b"]
    assert active_path(new_conversation()) == []


@pytest.mark.parametrize(
    ("target", "leaf"), [("a1", "a2"), ("q2", "a2"), ("a1b", "a1b"), ("q1", "a1b")]
)
def test_switch_to_shows_the_newest_leaf_below(target: str, leaf: str) -> None:
    assert switch_to(branched(), target).current_leaf_id == leaf


@pytest.mark.parametrize(
    ("start", "step", "path"),
    [
        ("a1b", -1, ["q1", "a1", "q2", "a2"]),
        ("a1", +1, ["q1", "a1b"]),
        ("a1", -1, ["q1", "a1", "q2", "a2"]),  # clamped at the first
        ("a1b", +1, ["q1", "a1b"]),  # clamped at the last
    ],
)
def test_switch_sibling(start: str, step: int, path: list[str]) -> None:
    assert ids(active_path(switch_sibling(branched(), start, step))) == path


def test_delete_subtree_off_the_active_branch_keeps_the_view() -> None:
    conversation = delete_subtree(branched(), "a1")
    assert sorted(conversation.messages) == ["a1b", "q1"]
    assert conversation.current_leaf_id == "a1b"


def test_delete_subtree_on_the_active_branch_moves_to_the_newest_leaf_under_its_parent() -> None:
    conversation = delete_subtree(branched(), "a1b")
    assert sorted(conversation.messages) == ["a1", "a2", "q1", "q2"]
    assert conversation.current_leaf_id == "a2"


def test_deleting_a_shown_root_moves_to_another_root_or_to_nothing() -> None:
    conversation = add_message(branched(), message("other", None, "user", 6.0))
    conversation = add_message(conversation, message("other-a", "other", "assistant", 7.0))

    moved = delete_subtree(conversation, "other")
    emptied = delete_subtree(moved, "q1")

    assert moved.current_leaf_id == "a1b"
    assert emptied.messages == {}
    assert emptied.current_leaf_id is None


def test_replace_message_keeps_the_place_and_refuses_a_move() -> None:
    conversation = branched()
    longer = replace(conversation.message("a1"), content="a1, continued")

    replaced = replace_message(conversation, longer)

    assert replaced.message("a1").content == "a1, continued"
    assert list(replaced.messages) == list(conversation.messages)
    assert replaced.current_leaf_id == "a1b"
    with pytest.raises(InvalidRequest):
        replace_message(conversation, replace(longer, parent_id="q2"))


def test_a_cycle_is_reported_not_followed_forever() -> None:
    looped = replace(
        new_conversation(),
        messages={"x": message("x", "y", "user", 1.0), "y": message("y", "x", "user", 2.0)},
        current_leaf_id="x",
    )
    with pytest.raises(InvalidRequest, match="cycle"):
        path_to(looped, "x")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("How do I bake bread?", "How do I bake bread?"),
        ("\n\n   Second line first  \nmore", "Second line first"),
        ("", "New chat"),
        ("   \n\t\n", "New chat"),
        ("x" * 60, "x" * 60),
        ("word " * 20, ("word " * 12).rstrip() + "…"),
        ("y" * 61, "y" * 59 + "…"),
    ],
)
def test_title_from_the_first_line(text: str, title: str) -> None:
    assert title_from(text) == title
    assert len(title_from(text)) <= 60


class TreeMachine(RuleBasedStateMachine):
    """Random chat sessions; ``expected`` is every message that must be there, as it must be."""

    def __init__(self) -> None:
        super().__init__()
        self.conversation = new_conversation(now=0.0)
        self.expected: dict[str, Message] = {}
        self.clock = 0.0

    def apply(self, operation: object, *args: object) -> Conversation:
        """Run a tree operation and check it did not change its argument."""
        before = self.conversation
        snapshot, leaf = dict(before.messages), before.current_leaf_id
        self.conversation = operation(before, *args)  # type: ignore[operator]
        assert dict(before.messages) == snapshot and before.current_leaf_id == leaf
        return self.conversation

    def pick(self, data: st.DataObject) -> Message:
        return self.expected[data.draw(st.sampled_from(list(self.expected)))]

    def now(self) -> float:
        self.clock += 1.0
        return self.clock

    @rule(text=st.text(max_size=5))
    def append_to_current_leaf(self, text: str) -> None:
        leaf = self.conversation.current_leaf_id
        role: Role = "assistant" if leaf and self.expected[leaf].role == "user" else "user"
        added = make_message(role, text, leaf, now=self.now())
        self.apply(add_message, added)
        self.expected[added.id] = added
        assert active_path(self.conversation)[-1] == added

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def regenerate_or_edit(self, data: st.DataObject) -> None:
        original = self.pick(data)
        old_leaf = self.conversation.current_leaf_id
        old_path = active_path(self.conversation)
        count = len(siblings(self.conversation, original.id))
        added = make_message(original.role, "new version", original.parent_id, now=self.now())

        self.apply(add_message, added)
        self.expected[added.id] = added

        assert sibling_position(self.conversation, added.id) == (count + 1, count + 1)
        assert active_path(self.conversation)[-1] == added
        assert old_leaf is not None  # there were messages, so one was shown
        assert active_path(switch_to(self.conversation, old_leaf)) == old_path

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), step=st.sampled_from([-1, 1]))
    def switch_to_a_sibling(self, data: st.DataObject, step: int) -> None:
        start = self.pick(data)
        row = ids(siblings(self.conversation, start.id))
        wanted = row[min(max(row.index(start.id) + step, 0), len(row) - 1)]
        self.apply(switch_sibling, start.id, step)
        assert wanted in ids(active_path(self.conversation))

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def switch_to_a_message(self, data: st.DataObject) -> None:
        target = self.pick(data)
        self.apply(switch_to, target.id)
        assert target in active_path(self.conversation)

    @precondition(lambda self: any(m.role == "assistant" for m in self.expected.values()))
    @rule(data=st.data(), more=st.text(min_size=1, max_size=5))
    def continue_an_answer(self, data: st.DataObject, more: str) -> None:
        answers = [m for m in self.expected.values() if m.role == "assistant"]
        answer = data.draw(st.sampled_from(answers))
        longer = replace(answer, content=answer.content + more, status="complete")
        leaf = self.conversation.current_leaf_id
        self.apply(replace_message, longer)
        self.expected[answer.id] = longer
        assert self.conversation.current_leaf_id == leaf

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def delete_a_subtree(self, data: st.DataObject) -> None:
        target = self.pick(data)
        doomed = {target.id}
        while True:  # the subtree, worked out from the model, not by the tree module
            below = {m.id for m in self.expected.values() if m.parent_id in doomed}
            if below <= doomed:
                break
            doomed |= below
        self.apply(delete_subtree, target.id)
        for message_id in doomed:
            del self.expected[message_id]

    @invariant()
    def no_message_is_lost_or_changed(self) -> None:
        assert dict(self.conversation.messages) == self.expected

    @invariant()
    def parents_exist_and_lead_to_a_root(self) -> None:
        messages = self.conversation.messages
        for start in messages.values():
            current: Message | None = start
            for _ in range(len(messages) + 1):
                if current is None or current.parent_id is None:
                    break
                assert current.parent_id in messages
                current = messages[current.parent_id]
            else:
                raise AssertionError(f"{start.id} does not lead to a root")

    @invariant()
    def the_current_leaf_is_a_message_with_no_children(self) -> None:
        leaf = self.conversation.current_leaf_id
        messages = self.conversation.messages
        if not messages:
            assert leaf is None
            return
        assert leaf in messages
        assert not any(m.parent_id == leaf for m in messages.values())

    @invariant()
    def the_active_path_runs_from_a_root_to_the_leaf(self) -> None:
        path = active_path(self.conversation)
        if path:
            assert path[0].parent_id is None
            assert path[-1].id == self.conversation.current_leaf_id
        for parent, child in zip(path, path[1:]):
            assert child.parent_id == parent.id


TreeMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=30, deadline=None
)
TestTreeMachine = TreeMachine.TestCase
