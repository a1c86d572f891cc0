"""Geometry of recognised text: boxes, page skew, rows, phrases and neighbours.

Pure Python (no numpy): an OCR engine gives quadrilaterals (four corner points, clockwise
from the top-left of the text) with their text and confidence; everything the answerer
needs -- "the box to the right of this key on the same row", "the cell of this row under
that column header", "the largest text" -- is computed here in a deskewed frame, so a
scanned page rotated by a few degrees still has straight rows.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

Point = tuple[float, float]


@dataclass(frozen=True)
class TextBox:
    """One recognised text region. Coordinates are in the image's pixels."""

    text: str
    confidence: float
    quad: tuple[Point, Point, Point, Point]  # top-left, top-right, bottom-right, bottom-left

    @property
    def angle(self) -> float:
        """Reading direction in radians (0 = horizontal, positive = clockwise on screen)."""
        (x0, y0), (x1, y1) = self.quad[0], self.quad[1]
        return math.atan2(y1 - y0, x1 - x0)

    @property
    def length(self) -> float:
        """Extent along the reading direction."""
        return (_dist(self.quad[0], self.quad[1]) + _dist(self.quad[3], self.quad[2])) / 2

    @property
    def height(self) -> float:
        """Extent across the reading direction: the size of the characters."""
        return max(1.0, (_dist(self.quad[0], self.quad[3]) + _dist(self.quad[1], self.quad[2])) / 2)

    @property
    def center(self) -> Point:
        return (sum(p[0] for p in self.quad) / 4, sum(p[1] for p in self.quad) / 4)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Axis-aligned bounding rectangle (left, top, right, bottom) in image pixels."""
        xs = [p[0] for p in self.quad]
        ys = [p[1] for p in self.quad]
        return min(xs), min(ys), max(xs), max(ys)


def _dist(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


@dataclass(frozen=True)
class Placed:
    """A box in the deskewed frame: an axis-aligned rectangle (x0, y0, x1, y1)."""

    box: TextBox
    index: int
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def text(self) -> str:
        return self.box.text

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def h(self) -> float:
        return max(1.0, self.y1 - self.y0)

    @property
    def w(self) -> float:
        return max(1.0, self.x1 - self.x0)


@dataclass
class Layout:
    """The page: deskewed boxes, grouped into rows (top to bottom, left to right)."""

    boxes: list[Placed]
    skew: float  # radians removed
    width: float
    height: float
    rows: list[list[Placed]] = field(default_factory=list)

    # -- construction
    @classmethod
    def from_boxes(cls, boxes: Sequence[TextBox], width: float, height: float) -> "Layout":
        skew = page_skew(boxes)
        cos, sin = math.cos(-skew), math.sin(-skew)
        placed = []
        for i, box in enumerate(boxes):
            pts = [(x * cos - y * sin, x * sin + y * cos) for x, y in box.quad]
            cx, cy = sum(p[0] for p in pts) / 4, sum(p[1] for p in pts) / 4
            # A box rotated by more than the page (a stamp, a slanted word) keeps its own
            # size: an axis-aligned hull of a rotated word would be far too tall.
            half_l, half_h = box.length / 2, box.height / 2
            if abs(_wrap(box.angle - skew)) < math.radians(20):
                x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
                y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
                if y1 - y0 > 1.6 * box.height:  # a slight residual tilt on a long line
                    y0, y1 = cy - half_h, cy + half_h
            else:
                x0, x1, y0, y1 = cx - half_l, cx + half_l, cy - half_h, cy + half_h
            placed.append(Placed(box, i, x0, y0, x1, y1))
        layout = cls(placed, skew, width, height)
        layout.rows = group_rows(placed)
        return layout

    # -- queries
    def row_of(self, item: Placed) -> list[Placed]:
        for row in self.rows:
            if any(p.index == item.index for p in row):
                return row
        return [item]

    def same_row(self, a: Placed, b: Placed) -> bool:
        overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
        return overlap >= 0.5 * min(a.h, b.h) and abs(a.cy - b.cy) <= 0.6 * max(a.h, b.h)

    def right_of(self, key: Placed) -> list[Placed]:
        """Boxes on the key's row to its right, nearest first."""
        found = [p for p in self.boxes if p.index != key.index and self.same_row(key, p) and p.x0 >= key.x1 - 0.5 * key.h]
        return sorted(found, key=lambda p: p.x0 - key.x1)

    def below(self, key: Placed, max_rows: float = 3.0) -> list[Placed]:
        """Boxes under the key that overlap it horizontally, nearest first (within a few lines)."""
        found = [
            p
            for p in self.boxes
            if p.index != key.index
            and p.cy > key.y1
            and p.cy - key.cy <= max_rows * 2.0 * max(key.h, p.h)
            and min(p.x1, key.x1) - max(p.x0, key.x0) > 0
        ]
        return sorted(found, key=lambda p: p.cy - key.cy)

    def above_in_column(self, key: Placed) -> list[Placed]:
        """Boxes above the key whose centre lies over the key (chart labels over their bars)."""
        slack = max(key.w, key.h) / 2 + key.h
        found = [p for p in self.boxes if p.index != key.index and p.cy < key.y0 and abs(p.cx - key.cx) <= slack]
        return sorted(found, key=lambda p: key.cy - p.cy)

    def cell(self, row_key: Placed, column_key: Placed) -> Placed | None:
        """The box on ``row_key``'s row under ``column_key`` (a table cell)."""
        candidates = [p for p in self.boxes if p.index not in (row_key.index, column_key.index) and self.same_row(row_key, p)]
        if not candidates:
            return None

        def alignment(p: Placed) -> tuple[float, float]:
            overlap = min(p.x1, column_key.x1) - max(p.x0, column_key.x0)
            return (-max(0.0, overlap) / min(p.w, column_key.w), min(abs(p.x0 - column_key.x0), abs(p.cx - column_key.cx)))

        best = min(candidates, key=alignment)
        overlap = min(best.x1, column_key.x1) - max(best.x0, column_key.x0)
        near = min(abs(best.x0 - column_key.x0), abs(best.cx - column_key.cx)) <= max(column_key.w, best.w)
        return best if overlap > 0 or near else None

    def leftmost_in_row(self, item: Placed) -> Placed:
        row = [p for p in self.boxes if self.same_row(item, p)] or [item]
        return min(row, key=lambda p: p.x0)

    def phrases(self) -> list[list[Placed]]:
        """Runs of boxes on one row with word-sized gaps: a sign or name split in two boxes."""
        out: list[list[Placed]] = []
        for row in self.rows:
            current = [row[0]]
            for p in row[1:]:
                previous = current[-1]
                similar = 0.6 <= p.h / previous.h <= 1.6
                if similar and p.x0 - previous.x1 <= 1.2 * max(p.h, previous.h):
                    current.append(p)
                else:
                    out.append(current)
                    current = [p]
            out.append(current)
        return out


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def page_skew(boxes: Iterable[TextBox]) -> float:
    """The page's rotation: the median reading direction of elongated boxes (small angles
    only: a few slanted words or a rotated stamp do not rotate the page)."""
    angles = [b.angle for b in boxes if b.length >= 2.0 * b.height and abs(b.angle) < math.radians(10)]
    if len(angles) < 2:
        return 0.0
    return statistics.median(angles)


def group_rows(placed: Sequence[Placed]) -> list[list[Placed]]:
    """Rows of boxes whose vertical extents overlap, top to bottom, each left to right."""
    rows: list[list[Placed]] = []
    for p in sorted(placed, key=lambda p: p.cy):
        for row in rows:
            ref_cy = statistics.fmean(q.cy for q in row)
            ref_h = statistics.fmean(q.h for q in row)
            if abs(p.cy - ref_cy) <= 0.5 * max(ref_h, p.h):
                row.append(p)
                break
        else:
            rows.append([p])
    for row in rows:
        row.sort(key=lambda p: p.x0)
    rows.sort(key=lambda r: statistics.fmean(q.cy for q in r))
    return rows
