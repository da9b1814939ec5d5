"""The branch map's layout, comparison and fork, and the map's HTML: pure values, no server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatui import branchmap, forking, tree
from chatui.branchmap import Run
from chatui.errors import InvalidRequest, NotFound
from chatui.tree import Conversation, Timings
from chatui.ui import branchmap as view

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def build(*specs: tuple[str, str, str | None]) -> tuple[Conversation, dict[str, str]]:
    """Messages (name, role, parent name) in order, one second apart."""
    conversation = tree.new_conversation("T", now=0.0)
    ids: dict[str, str] = {}
    for stamp, (name, role, parent) in enumerate(specs, start=1):
        message = tree.make_message(role, f"text of {name}",  # type: ignore[arg-type]
                                    ids[parent] if parent else None, now=float(stamp),
                                    model="m-" + name if role == "assistant" else None)
        ids[name] = message.id
        conversation = tree.add_message(conversation, message)
    return conversation, ids


def test_layout_is_depth_first_indented_at_branch_points() -> None:
    conversation, ids = build(
        ("q1", "user", None), ("a1", "assistant", "q1"), ("a1b", "assistant", "q1"),
        ("q2", "user", "a1"), ("a2", "assistant", "q2"),
    )
    conversation = tree.switch_to(conversation, ids["a2"])
    mapped = branchmap.branch_map(conversation)
    by_name = {name: next(n for n in mapped.nodes if n.id == i) for name, i in ids.items()}
    assert [n.id for n in mapped.nodes] == [ids[k] for k in ("q1", "a1", "q2", "a2", "a1b")]
    assert [by_name[k].depth for k in ("q1", "a1", "q2", "a2", "a1b")] == [0, 1, 1, 1, 1]
    assert (by_name["a1b"].position, by_name["a1b"].siblings) == (2, 2)
    assert [k for k, n in by_name.items() if n.active] == ["q1", "a1", "q2", "a2"]
    assert by_name["a2"].current and not by_name["a1b"].active
    assert by_name["a1"].children == 1 and mapped.branches == 2
    assert by_name["a1"].model == "m-a1" and by_name["q2"].preview == "text of q2"


def test_long_chains_off_the_active_path_fold_and_the_active_path_never_does() -> None:
    specs: list[tuple[str, str, str | None]] = [("q0", "user", None)]
    for chain in ("x", "y"):  # two long chains under q0: y is newest, so it is active
        parent = "q0"
        for step in range(30):
            name = f"{chain}{step}"
            specs.append((name, "assistant" if step % 2 == 0 else "user", parent))
            parent = name
    conversation, ids = build(*specs)
    mapped = branchmap.branch_map(conversation)
    assert len(mapped.nodes) == 61
    rows = branchmap.rows(mapped)
    runs = [row for row in rows if isinstance(row, Run)]
    assert len(runs) == 1 and len(runs[0].nodes) == 30 - 2 * branchmap.RUN_KEEP
    assert all(not node.active for node in runs[0].nodes)
    shown = [row.id for row in rows if not isinstance(row, Run)]
    assert ids["x0"] in shown and ids["x29"] in shown and ids["x5"] not in shown
    assert all(ids[f"y{step}"] in shown for step in range(30))
    drawn = view.map_html(mapped)  # a folded run is one row: a jump to its first message
    assert drawn.count('data-map="jump"') == 61 - len(runs[0].nodes) + 1
    assert f'data-id="{runs[0].nodes[0].id}"><button type="button" data-map="jump">' in drawn
    assert f'data-id="{runs[0].nodes[1].id}"' not in drawn


def test_two_hundred_messages_and_twenty_branches_stay_one_value() -> None:
    specs: list[tuple[str, str, str | None]] = [("root", "user", None)]
    for branch in range(20):
        parent = "root"
        for step in range(10):
            name = f"b{branch}s{step}"
            specs.append((name, "assistant" if step % 2 == 0 else "user", parent))
            parent = name
    conversation, _ = build(*specs)
    mapped = branchmap.branch_map(conversation)
    assert len(mapped.nodes) == 201 and mapped.branches == 20
    rows = branchmap.rows(mapped)
    assert sum(1 for row in rows if isinstance(row, Run)) == 19  # all but the active branch
    assert len(rows) == 1 + 10 + 19 * (2 * branchmap.RUN_KEEP + 1)


def test_compare_takes_two_sibling_answers_only() -> None:
    conversation, ids = build(("q", "user", None), ("a", "assistant", "q"),
                              ("b", "assistant", "q"), ("q2", "user", "b"),
                              ("c", "assistant", "q2"))
    timed = replace(conversation.message(ids["b"]), timings=Timings(
        generated_tokens=42, tokens_per_second=12.5, ttft_ms=310.0))
    conversation = tree.replace_message(conversation, timed)
    first, second = branchmap.compare(conversation, ids["a"], ids["b"])
    assert (first.position, second.position, second.siblings) == (1, 2, 2)
    assert (second.model, second.tokens, second.tokens_per_second, second.ttft_ms) == (
        "m-b", 42, 12.5, 310.0)
    assert first.tokens is None
    for pair in ((ids["a"], ids["c"]), (ids["a"], ids["a"]), (ids["q"], ids["a"])):
        with pytest.raises(InvalidRequest):
            branchmap.compare(conversation, *pair)
    with pytest.raises(NotFound):
        branchmap.compare(conversation, ids["a"], "nope")
    drawn = view.compare_html("the question", (first, second))
    assert "42 tokens · 12.5 tok/s · TTFT 310 ms" in drawn and "m-b" in drawn


def test_fork_copies_the_path_with_fresh_ids_and_leaves_the_source() -> None:
    conversation, ids = build(("q", "user", None), ("a", "assistant", "q"),
                              ("b", "assistant", "q"), ("q2", "user", "b"))
    fork = forking.forked(conversation, ids["b"])
    path = tree.active_path(fork)
    assert [m.content for m in path] == ["text of q", "text of b"]
    assert fork.id != conversation.id and fork.title == "T (fork)"
    assert not set(fork.messages) & set(conversation.messages)
    assert fork.owner == conversation.owner and fork.settings == conversation.settings
    assert path[1].model == "m-b" and fork.current_leaf_id == path[-1].id
    long = forking.forked(tree.rename(conversation, "x" * 200), ids["q"])
    assert len(long.title) <= 200 and long.title.endswith(" (fork)")


def test_every_text_in_the_map_is_escaped() -> None:
    conversation, ids = build(("q", "user", None), ("a", "assistant", "q"))
    hostile = replace(conversation.message(ids["a"]), content=HOSTILE, model=HOSTILE,
                      status="error")
    conversation = tree.replace_message(conversation, hostile)
    drawn = view.map_html(branchmap.branch_map(conversation))
    assert "<img" not in drawn and "&lt;img src=x onerror=" in drawn
    compared = view.compare_html(HOSTILE, (branchmap._side(conversation, hostile),) * 2)
    assert "<img" not in compared


@pytest.mark.parametrize("value", [
    None, "", "jump", "jump x", "jump a,b 1", "compare a 1", "compare a,b,c 1",
    "prune ../x 1", "fork <b> 1", "explode a 1", "jump a 1 extra", ["jump", "a"], 7,
    "jump " + "a" * 1000 + " 1",
])
def test_a_forged_click_is_ignored(value: object) -> None:
    assert view.parse(value) is None


def test_a_click_value_is_read() -> None:
    assert view.parse("compare a1,b-2 123") == ("compare", ("a1", "b-2"))
    assert view.parse("prune abc 9") == ("prune", ("abc",))
