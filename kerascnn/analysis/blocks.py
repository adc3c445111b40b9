"""The lecture's two Inception modules (Szegedy et al. 2014, "Going deeper with convolutions",
Figure 2) on its 28x28x256 example input, as small models to summarise:

    kerascnn summary --block inception-naive      # 854 M multiply-adds
    kerascnn summary --block inception-reduced    # 271 M: the 1x1 reductions cut the cost 3.1 times

Both come from `kerascnn.models.layers.inception_v1_module`, the block GoogLeNet is built from. The slide
totals the reduced module as "358M ops", but its own six terms,
28*28*(64*256 + 64*256 + 128*256 + 192*9*64 + 96*25*64 + 64*256), sum to 271,351,808; the summary
prints the count and says where the slide differs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Tuple

from kerascnn.analysis.formats import human
from kerascnn.analysis.summary import Summary, group_totals, summarize
from kerascnn.errors import ModelError

PREFIX = "inception"  # layer names: inception_1x1, inception_3x3_reduce, ..., inception_concat


@dataclass(frozen=True)
class BlockSpec:
    """An Inception module and what the lecture slide says it costs."""

    description: str
    filters: Tuple[int, int, int, int, int, int]  # (c1, c3_reduce, c3, c5_reduce, c5, pool_proj)
    naive: bool  # Figure 2(a): no 1x1 reductions, the pooled input passes through unprojected
    slide_macs: int  # the slide's "Total: ... ops"
    input_shape: Tuple[int, int, int] = (28, 28, 256)

    def build(self, name: str):
        import keras  # on use, so that `kerascnn --help` needs no TensorFlow

        from kerascnn.models.layers import inception_v1_module

        inputs = keras.Input(self.input_shape, name="input")
        outputs = inception_v1_module(inputs, self.filters, name=PREFIX, naive=self.naive)
        return keras.Model(inputs, outputs, name=name.replace("-", "_"))

    def branches(self) -> Dict[str, Tuple[str, ...]]:
        """Branch label -> its layers (names the naive module lacks are skipped when counting)."""
        c1, c3r, c3, c5r, c5, pool_proj = self.filters
        reduce = "" if self.naive else "1x1 @{} -> "
        layers = {
            f"1x1 conv @{c1}": ("1x1",),
            f"{reduce.format(c3r)}3x3 conv @{c3}": ("3x3_reduce", "3x3"),
            f"{reduce.format(c5r)}5x5 conv @{c5}": ("5x5_reduce", "5x5"),
            "3x3 max pool" + ("" if self.naive else f" -> 1x1 @{pool_proj}"): ("pool", "pool_proj"),
        }
        return {label: tuple(f"{PREFIX}_{s}" for s in suffixes) for label, suffixes in layers.items()}


BLOCKS: Dict[str, BlockSpec] = {
    "inception-naive": BlockSpec(
        "naive Inception module: 1x1@128, 3x3@192, 5x5@96 and 3x3 max pooling, concatenated",
        filters=(128, 0, 192, 0, 96, 0),  # the reductions (0) are unused by the naive module
        naive=True, slide_macs=854 * 10**6),
    "inception-reduced": BlockSpec(
        "Inception module with dimension reduction: 1x1@128; 1x1@64 -> 3x3@192; 1x1@64 -> 5x5@96; "
        "3x3 max pool -> 1x1@64",
        filters=(128, 64, 192, 64, 96, 64),
        naive=False, slide_macs=358 * 10**6),
}


def get_block(name: str) -> BlockSpec:
    if name not in BLOCKS:
        raise ModelError(f"Unknown block {name!r}. Expected one of: {', '.join(sorted(BLOCKS))}.")
    return BLOCKS[name]


def block_summary(name: str) -> Summary:
    """The summary of block `name` with per-branch totals and the lecture slide's figure beside ours."""
    spec = get_block(name)
    summary = summarize(spec.build(name))
    macs = summary.totals.macs
    # The slides round to millions; anything further off than that is the slide's mistake.
    verdict = ("agrees" if abs(spec.slide_macs - macs) < 10**6
               else "is a slip: its own terms sum to the count above")
    note = (f"Lecture slide: {human(spec.slide_macs)} ops; counted: {macs:,} ({human(macs)}) multiply-adds "
            f"-- the slide {verdict}.")
    return dataclasses.replace(summary, groups=group_totals(summary, spec.branches()),
                               notes=(spec.description, note))
