"""Where each node of a jobflow's DAG is drawn (pure: no Django imports).

Left to right: a node's column is its depth, the length of the longest path
from a node without parents; nodes of one column are stacked in topological
order. Edges are cubic curves from the right side of a parent to the left
side of a child.
"""

from __future__ import annotations

from dataclasses import dataclass

NODE_W, NODE_H = 170, 46
GAP_X, GAP_Y = 70, 22
MARGIN = 16


@dataclass(frozen=True)
class Box:
    key: str
    x: int
    y: int
    depth: int


def depths(order: list[str], edges: list[list[str]]) -> dict[str, int]:
    """Longest-path depth of every node; `order` must be topological."""
    parents: dict[str, list[str]] = {key: [] for key in order}
    for before, after in edges:
        parents[after].append(before)
    depth: dict[str, int] = {}
    for key in order:
        depth[key] = 1 + max((depth[p] for p in parents[key]), default=-1)
    return depth


def layout(order: list[str], edges: list[list[str]]) -> dict:
    """{"boxes": {key: Box}, "edges": [{"from", "to", "d"}], "width", "height"} for an SVG."""
    depth = depths(order, edges)
    rows: dict[int, int] = {}
    boxes = {}
    for key in order:
        column = depth[key]
        row = rows.get(column, 0)
        rows[column] = row + 1
        boxes[key] = Box(key, MARGIN + column * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y), column)
    paths = []
    for before, after in edges:
        a, b = boxes[before], boxes[after]
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        bend = max(GAP_X // 2, (x2 - x1) // 2)
        paths.append({"from": before, "to": after, "d": f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"})
    columns = max(depth.values(), default=0) + 1
    tallest = max(rows.values(), default=1)
    return {
        "boxes": boxes,
        "edges": paths,
        "width": 2 * MARGIN + columns * NODE_W + (columns - 1) * GAP_X,
        "height": 2 * MARGIN + tallest * NODE_H + (tallest - 1) * GAP_Y,
    }
