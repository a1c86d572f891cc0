"""Deterministic stratified subsets (``builtin-v1-quick``, ``calibrate --limit``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from lrcal.calsets.format import Example, ordered_groups


def group_quotas(counts: dict[str, int], n: int) -> dict[str, int]:
    """Split ``n`` over groups in proportion to their sizes (largest remainder; ties go to
    the group first in canonical order), never more than a group holds."""
    total = sum(counts.values())
    if n >= total:
        return dict(counts)
    order = list(ordered_groups(list(counts)))
    exact = {g: n * counts[g] / total for g in order}
    quota = {g: min(counts[g], int(exact[g])) for g in order}
    left = n - sum(quota.values())
    by_remainder = sorted(order, key=lambda g: (-(exact[g] - int(exact[g])), order.index(g)))
    while left > 0:
        progressed = False
        for g in by_remainder:
            if left and quota[g] < counts[g]:
                quota[g] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return quota


def stratified_subset(examples: Sequence[Example], n: int) -> list[Example]:
    """``n`` examples stratified by task group and, inside a group, round-robin over
    ``meta.subtype`` (in order of first appearance), returned in manifest order."""
    if n <= 0:
        return []
    groups: dict[str, list[int]] = OrderedDict()
    for index, example in enumerate(examples):
        groups.setdefault(example.task_group, []).append(index)
    quotas = group_quotas({g: len(ix) for g, ix in groups.items()}, n)
    chosen: list[int] = []
    for group, indices in groups.items():
        by_subtype: dict[str, list[int]] = OrderedDict()
        for index in indices:
            by_subtype.setdefault(examples[index].subtype or "", []).append(index)
        queues = [list(q) for q in by_subtype.values()]
        picked: list[int] = []
        while len(picked) < quotas[group] and any(queues):
            for queue in queues:
                if queue and len(picked) < quotas[group]:
                    picked.append(queue.pop(0))
        chosen.extend(picked)
    return [examples[i] for i in sorted(chosen)]
