"""chats.tree: the visible path through a message tree, and sibling positions (pure functions)."""

from __future__ import annotations

from chats import tree
from chats.tree import Position

# A tree (ids in creation order):
#
#   1 (root, user)
#   ├── 2 (reply)
#   │   └── 4 (user)
#   │       └── 5 (reply)
#   └── 3 (regenerated reply)
#       └── 6 (user)
#           ├── 7 (reply)
#           └── 8 (reply)
#   9 (a second root: an edited first question)
#   └── 10 (reply)
ROWS = [
    (1, None, None),
    (2, 1, None),
    (3, 1, None),
    (4, 2, None),
    (5, 4, None),
    (6, 3, None),
    (7, 6, None),
    (8, 6, None),
    (9, None, None),
    (10, 9, None),
]


def build(active: dict[int, int] | None = None):
    """The tree above, with `active` = {message id: chosen child id}."""
    active = active or {}
    return tree.build([(i, parent, active.get(i)) for i, parent, _ in ROWS])


def test_build_lists_children_oldest_first():
    nodes = build()
    assert nodes[1].children == [2, 3]
    assert nodes[6].children == [7, 8]
    assert nodes[5].children == []


def test_roots_are_the_messages_without_a_parent_in_creation_order():
    assert tree.roots(build()) == [1, 9]


def test_an_empty_tree_has_an_empty_path():
    assert tree.path({}, None) == []
    assert tree.path({}, 5) == []


def test_the_path_follows_the_active_root_and_active_children():
    nodes = build({1: 2, 6: 7})
    assert tree.path(nodes, 1) == [1, 2, 4, 5]
    nodes = build({1: 3, 6: 7})
    assert tree.path(nodes, 1) == [1, 3, 6, 7]


def test_without_a_choice_the_path_falls_back_to_the_newest_child():
    nodes = build()
    assert tree.path(nodes, 1) == [1, 3, 6, 8]


def test_an_active_child_that_is_not_a_child_is_ignored():
    nodes = build({1: 10})  # 10 is not a child of 1: fall back to the newest child
    assert tree.path(nodes, 1) == [1, 3, 6, 8]


def test_without_an_active_root_the_newest_root_is_shown():
    nodes = build()
    assert tree.path(nodes, None) == [9, 10]
    assert tree.path(nodes, 12345) == [9, 10]  # a root that no longer exists


def test_multiple_roots_the_active_root_picks_the_branch():
    nodes = build({1: 2})
    assert tree.path(nodes, 1) == [1, 2, 4, 5]
    assert tree.path(nodes, 9) == [9, 10]


def test_the_path_through_a_given_message_goes_through_its_ancestors_then_active_descendants():
    nodes = build({1: 2, 6: 7})
    # Showing 6 (under the non-active reply 3) doesn't follow the active choices above it.
    assert tree.path(nodes, 1, leaf_id=6) == [1, 3, 6, 7]
    assert tree.path(nodes, 1, leaf_id=8) == [1, 3, 6, 8]
    assert tree.path(nodes, 1, leaf_id=3) == [1, 3, 6, 7]
    assert tree.path(nodes, 1, leaf_id=10) == [9, 10]


def test_a_leaf_that_is_not_in_the_tree_falls_back_to_the_active_path():
    nodes = build({1: 2})
    assert tree.path(nodes, 1, leaf_id=999) == [1, 2, 4, 5]


def test_siblings_of_a_root_are_the_roots():
    nodes = build()
    assert tree.siblings(nodes, 1) == [1, 9]
    assert tree.siblings(nodes, 9) == [1, 9]
    assert tree.siblings(nodes, 7) == [7, 8]
    assert tree.siblings(nodes, 5) == [5]


def test_a_position_says_index_of_count_with_previous_and_next():
    nodes = build()
    assert tree.position(nodes, 2) == Position(index=1, count=2, previous_id=None, next_id=3)
    assert tree.position(nodes, 3) == Position(index=2, count=2, previous_id=2, next_id=None)


def test_a_message_without_siblings_is_one_of_one():
    nodes = build()
    assert tree.position(nodes, 4) == Position(index=1, count=1, previous_id=None, next_id=None)


def test_a_middle_sibling_has_both_neighbours():
    nodes = tree.build([(1, None, None), (2, 1, None), (3, 1, None), (4, 1, None)])
    assert tree.position(nodes, 3) == Position(index=2, count=3, previous_id=2, next_id=4)


def test_roots_have_positions_among_the_roots():
    nodes = build()
    assert tree.position(nodes, 1) == Position(index=1, count=2, previous_id=None, next_id=9)
    assert tree.position(nodes, 9) == Position(index=2, count=2, previous_id=1, next_id=None)


def test_rows_whose_parent_is_missing_are_kept_but_hang_from_nothing():
    # A message whose parent was not fetched must not break building the tree.
    nodes = tree.build([(1, None, None), (5, 99, None)])
    assert nodes[1].children == []
    assert nodes[5].children == []


def apply(nodes, active_root_id, changes):
    """Write the choices as the service does; returns the new active root."""
    for parent_id, child_id in changes:
        if parent_id is None:
            active_root_id = child_id
        else:
            nodes[parent_id].active_child_id = child_id
    return active_root_id


def test_showing_a_message_already_on_the_path_changes_nothing():
    nodes = build()
    assert tree.choices_to_show(nodes, None, 10) == []
    assert tree.choices_to_show(nodes, 1, 8) == []  # newest children: no pointer needed
    assert tree.choices_to_show(nodes, 1, 3) == []


def test_showing_a_message_on_another_branch_changes_only_the_differing_choices():
    nodes = build()
    changes = tree.choices_to_show(nodes, None, 7)
    assert changes == [(None, 1), (6, 7)]  # 1 → 3 → 6 is already the newest-child default
    root = apply(nodes, None, changes)
    assert tree.path(nodes, root) == [1, 3, 6, 7]


def test_showing_a_deep_message_rewrites_every_ancestor_choice_that_differs():
    nodes = build({1: 3})
    changes = tree.choices_to_show(nodes, 9, 5)
    assert changes == [(None, 1), (1, 2)]
    root = apply(nodes, 9, changes)
    assert tree.path(nodes, root) == [1, 2, 4, 5]
    assert tree.choices_to_show(nodes, root, 5) == []


def test_chosen_prefers_the_choice_and_falls_back_to_the_newest():
    assert tree.chosen([2, 3], 2) == 2
    assert tree.chosen([2, 3], None) == 3
    assert tree.chosen([2, 3], 99) == 3
    assert tree.chosen([], 5) is None
