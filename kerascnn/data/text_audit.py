"""`kerascnn audit tsv:FILE` (and any text spec): what is in text data before a network trains on it.

The problems that quietly cost accuracy in text collected from real life: lines that are not UTF-8
(skipped), empty texts, the same text twice (within a split: a bigger weight for it; across
train and val or test: an inflated validation score), texts far longer than the rest (truncated by
the model) and classes of very different sizes. Duplicates are compared case-folded with runs of
white space collapsed, so "Great film!" and "great  film!" count as one.

    report = audit_text(DataConfig(spec="tsv:reviews.tsv", label_threshold=0))
    print(report.format()); report.to_json()
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from kerascnn.config import DataConfig
from kerascnn.data.audit import CountsReport, _groups, balanced_class_weights
from kerascnn.data.folders import summarize_skipped


@dataclass
class TextAuditReport(CountsReport):
    """What `audit_text` found; `format()` for people, `to_json()` for programs."""

    spec: str
    classes: List[str]
    counts: Dict[str, Dict[str, int]]  # split -> class -> texts
    lengths: Dict[str, Dict[str, float]]  # split -> min / median / max words a text
    duplicates: List[List[str]]  # groups of the same text within one split (where each came from)
    across_splits: List[List[str]]  # groups of the same text in more than one split (leakage)
    undecodable: List[str]  # lines or files that are not UTF-8 (skipped)
    empty: List[str]  # empty texts (skipped)
    skipped: List[Tuple[str, str]]  # everything skipped, with why (the two above included)
    left_out: int = 0  # rows rated exactly --label-threshold
    held_out: float = 0.0  # the fraction of train counted as val (fit's hold-out), when there is no val
    class_weights: Dict[str, float] = field(default_factory=dict)


    def summary(self) -> str:
        """One line, as `fit` logs it."""
        sizes = " / ".join(f"{sum(c.values()):,} {s}" for s, c in self.counts.items())
        if self.held_out:
            sizes += f" (val: {self.held_out:.0%} of the texts held out)"
        train = self.lengths.get("train")
        parts = [f"{len(self.classes)} classes", sizes, f"imbalance {self.imbalance:.1f}x"]
        if train:
            parts.append(f"words a text {train['min']:.0f} / {train['median']:.0f} / {train['max']:.0f} "
                         f"(min / median / max)")
        other = len(self.skipped) - len(self.undecodable) - len(self.empty)
        for n, what in ((len(self.undecodable), "lines or files not UTF-8 skipped"),
                        (len(self.empty), "empty texts skipped"), (other, "other rows or files skipped"),
                        (self.left_out, "ratings equal to the threshold left out"),
                        (sum(len(g) - 1 for g in self.duplicates), "duplicate texts"),
                        (len(self.across_splits), "texts in more than one split")):
            if n:
                parts.append(f"{n:,} {what}")
        return f"audit {self.spec}: " + "; ".join(parts)

    def format(self) -> str:
        """A table per split, the lengths, and the findings, each with a few of its lines or files."""
        splits = list(self.counts)
        width = max([len("class")] + [len(c) for c in self.classes])
        lines = [f"Text data {self.spec}: {len(self.classes)} classes", "",
                 "  ".join(["class".ljust(width)] + [s.rjust(7) for s in splits] + ["weight".rjust(7)])]
        for c in self.classes:
            row = [c.ljust(width)] + [f"{self.counts[s].get(c, 0):7,}" for s in splits]
            lines.append("  ".join(row + [f"{self.class_weights.get(c, float('nan')):7.2f}"]))
        lines.append("  ".join(["total".ljust(width)] + [f"{sum(self.counts[s].values()):7,}" for s in splits]))
        if self.held_out:
            lines.append(f"(val: {self.held_out:.0%} of the training texts, held out as fit does)")
        lines += ["", "Words a text (split on white space): " + "; ".join(
            f"{s} {v['min']:.0f} / {v['median']:.0f} / {v['max']:.0f}" for s, v in self.lengths.items())
            + " (min / median / max)"]
        lines += [f"Class imbalance (largest / smallest training class): {self.imbalance:.2f}x"
                  + ("; train with the class weights above (balanced)" if self.imbalance >= 1.5 else "")]
        lines.append(f"Lines or files not UTF-8 (skipped): {len(self.undecodable)}"
                     + (f" ({', '.join(self.undecodable[:5])}{', ...' if len(self.undecodable) > 5 else ''})"
                        if self.undecodable else ""))
        lines.append(f"Empty texts (skipped): {len(self.empty)}")
        other = [s for s in self.skipped if s[0] not in set(self.undecodable) | set(self.empty)]
        if other:
            lines.append(summarize_skipped(other, what="other rows or files"))
        if self.left_out:
            lines.append(f"Ratings equal to --label-threshold (left out): {self.left_out:,}")
        lines += _groups("Duplicate texts within a split", self.duplicates)
        lines += _groups("Texts in more than one split (they inflate validation scores)", self.across_splits)
        return "\n".join(lines) + "\n"


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def audit_text(cfg: DataConfig, source=None) -> TextAuditReport:
    """Read the text spec `cfg.spec` as `fit` does (val held out of train by --val-split and --seed
    when there is no validation split) and report.

    Raises:
        DataError, SettingError: the spec cannot be read (the loader's own one-line message).
    """
    from kerascnn.data.build import resolve_splits
    from kerascnn.data.text import open_text_source

    source = source if source is not None else open_text_source(cfg)
    splits = resolve_splits(source, cfg)
    classes = list(source.class_names)
    held_out = cfg.val_split if "val" in splits and "val" not in source.splits else 0.0
    counts, lengths, seen = {}, {}, {}
    for name, part in splits.items():
        counts[name] = dict(zip(classes, np.bincount(part.labels, minlength=len(classes)).tolist()))
        words = np.array([len(t.split()) for t in part.texts]) if len(part) else np.zeros(1)
        lengths[name] = {"min": float(words.min()), "median": float(np.median(words)), "max": float(words.max())}
        for text, origin in zip(part.texts, part.origins):
            seen.setdefault(_normal(text), []).append((name, str(origin)))
    same, across = [], []
    for members in seen.values():
        if len(members) > 1:
            (across if len({s for s, _ in members}) > 1 else same).append(
                [f"{s}:{o}" if len({s for s, _ in members}) > 1 else o for s, o in members])
    skipped = list(source.skipped)
    return TextAuditReport(cfg.spec, classes, counts, lengths, same, across,
                           [w for w, why in skipped if why == "not valid UTF-8"],
                           [w for w, why in skipped if why == "empty text"], skipped,
                           len(getattr(source, "left_out", [])), held_out,
                           balanced_class_weights(counts.get("train", {})))


__all__ = ["TextAuditReport", "audit_text"]
