"""The message tree, as pure functions over a skeleton {id: Node} (no ORM here).

The visible conversation is a path: start at the active root, follow each message's
`active_child` (or its newest child when none is chosen) down to a leaf."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass
class Node:
    id: int
    parent_id: int | None
    active_child_id: int | None
    children: list[int] = field(default_factory=list)  # oldest first


@dataclass(frozen=True)
class Position:
    """Where a message sits among its siblings: `‹ index/count ›`."""

    index: int  # 1-based
    count: int
    previous_id: int | None
    next_id: int | None


def build(rows) -> dict[int, Node]:
    """rows: (id, parent_id, active_child_id) ordered by creation."""
    nodes = {row[0]: Node(row[0], row[1], row[2]) for row in rows}
    for node in nodes.values():
        if node.parent_id is not None and node.parent_id in nodes:
            nodes[node.parent_id].children.append(node.id)
    return nodes


def roots(nodes: dict[int, Node]) -> list[int]:
    return [node.id for node in nodes.values() if node.parent_id is None]


def chosen(node_ids: list[int], preferred: int | None) -> int | None:
    """The sibling the path takes: the preferred one, else the newest."""
    return _chosen(node_ids, preferred)


def _chosen(node_ids: list[int], preferred: int | None) -> int | None:
    if not node_ids:
        return None
    return preferred if preferred in node_ids else node_ids[-1]


def path(
    nodes: dict[int, Node], active_root_id: int | None, leaf_id: int | None = None
) -> list[int]:
    """The visible path. With `leaf_id`: the path through that message (its ancestors, then its
    active descendants) — how a sibling switch or a direct link shows a branch."""
    if leaf_id is not None and leaf_id in nodes:
        up = []
        current: int | None = leaf_id
        while current is not None:
            up.append(current)
            current = nodes[current].parent_id
        result = list(reversed(up))
    else:
        first = _chosen(roots(nodes), active_root_id)
        if first is None:
            return []
        result = [first]
    while True:
        node = nodes[result[-1]]
        following = _chosen(node.children, node.active_child_id)
        if following is None:
            return result
        result.append(following)


def siblings(nodes: dict[int, Node], message_id: int) -> list[int]:
    node = nodes[message_id]
    if node.parent_id is None:
        return roots(nodes)
    return nodes[node.parent_id].children


def position(nodes: dict[int, Node], message_id: int) -> Position:
    return position_among(siblings(nodes, message_id), message_id)


def position_among(group: list[int], message_id: int) -> Position:
    """Where `message_id` is among its siblings `group` (oldest first)."""
    index = group.index(message_id)
    return Position(
        index=index + 1,
        count=len(group),
        previous_id=group[index - 1] if index > 0 else None,
        next_id=group[index + 1] if index + 1 < len(group) else None,
    )


def choices_to_show(
    nodes: dict[int, Node], active_root_id: int | None, message_id: int
) -> list[tuple[int | None, int]]:
    """What must change so the visible path runs through `message_id`: (parent id, child id)
    pairs where the path would otherwise take another sibling (None as parent: the roots)."""
    chain = []
    current: int | None = message_id
    while current is not None:
        chain.append(current)
        current = nodes[current].parent_id
    chain.reverse()
    changes = []
    if chosen(roots(nodes), active_root_id) != chain[0]:
        changes.append((None, chain[0]))
    for parent_id, child_id in itertools.pairwise(chain):
        node = nodes[parent_id]
        if chosen(node.children, node.active_child_id) != child_id:
            changes.append((parent_id, child_id))
    return changes
