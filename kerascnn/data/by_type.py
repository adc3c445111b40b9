"""Accuracy per question type and per group of types: how a VQA model is scored (Santoro et al.
2017 report Sort-of-CLEVR's relational and non-relational questions apart).

The data gives the type of every example of a split in the order the unshuffled split yields them
(`VqaBundle.question_types`, an index into `type_names`) and the groups (`type_groups`: group ->
type names); the scorer gives whether each prediction was right, in the same order.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np


def accuracy_by_type(correct: np.ndarray, types: np.ndarray, type_names: Sequence[str]) -> List[dict]:
    """[{"type", "examples", "correct", "accuracy"}] for every type that has examples, in
    `type_names`' order; `correct[i]` is whether example i (of type `types[i]`) was answered right."""
    correct, types = np.asarray(correct, bool), np.asarray(types, np.int64)
    if correct.shape != types.shape:
        raise ValueError(f"{len(correct)} scored examples but {len(types)} question types.")
    rows = []
    for index, name in enumerate(type_names):
        mine = types == index
        n = int(mine.sum())
        if n:
            hits = int(correct[mine].sum())
            rows.append({"type": str(name), "examples": n, "correct": hits, "accuracy": hits / n})
    return rows


def accuracy_by_group(by_type: Sequence[Mapping], groups: Mapping[str, Sequence[str]]) -> List[dict]:
    """[{"group", "types", "examples", "correct", "accuracy"}] of each group with examples, summed
    over its types' rows (`accuracy_by_type`)."""
    rows = {r["type"]: r for r in by_type}
    out = []
    for group, names in groups.items():
        mine = [rows[n] for n in names if n in rows]
        n = sum(r["examples"] for r in mine)
        if n:
            hits = sum(r["correct"] for r in mine)
            out.append({"group": str(group), "types": [r["type"] for r in mine], "examples": n, "correct": hits,
                        "accuracy": hits / n})
    return out


def breakdown(bundle, split: str, correct: np.ndarray) -> Optional[Dict[str, List[dict]]]:
    """{"by_type": [...], "by_group": [...]} of `split` of a bundle that knows its examples' types
    (a VqaBundle), else None; None too when the count scored differs from the split's (a streamed
    file that failed to decode: the types no longer line up)."""
    return breakdown_of(correct, getattr(bundle, "question_types", {}).get(split), getattr(bundle, "type_names", []),
                        getattr(bundle, "type_groups", {}) or {})


def breakdown_of(correct: np.ndarray, types: Optional[np.ndarray], type_names: Sequence[str],
                 groups: Mapping[str, Sequence[str]]) -> Optional[Dict[str, List[dict]]]:
    """`breakdown` from the parts: None when there are no types or their count differs from the scored."""
    if types is None or len(types) != len(correct):
        return None
    by_type = accuracy_by_type(correct, types, type_names)
    return {"by_type": by_type, "by_group": accuracy_by_group(by_type, groups)}


def format_breakdown(by_type: Sequence[Mapping], by_group: Sequence[Mapping]) -> str:
    """The per-type and per-group table `kerascnn evaluate` prints."""
    group_of = {t: g["group"] for g in by_group for t in g["types"]}
    rows = [("question type", "group", "examples", "accuracy")]
    rows += [(r["type"], group_of.get(r["type"], ""), f"{r['examples']:,}", f"{r['accuracy']:.2%}") for r in by_type]
    rows += [(f"all {g['group']}", "", f"{g['examples']:,}", f"{g['accuracy']:.2%}") for g in by_group]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     .rstrip() for r in rows)


__all__ = ["accuracy_by_group", "accuracy_by_type", "breakdown", "breakdown_of", "format_breakdown"]
